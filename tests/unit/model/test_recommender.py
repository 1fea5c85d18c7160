from lens.baselines.recommender import NextBasket, Recommender
from lens.model.recommender import LensRecommender
from lens.model.trained_lens import TrainedLens


def test_lens_recommender_speaks_the_recommender_protocol(funnels, vocabulary, users, config):
    trained = TrainedLens.create(config, vocabulary, users)
    recommender = LensRecommender(trained=trained)
    assert isinstance(recommender, Recommender) and recommender.name == "lens"
    assert recommender.fit(funnels) is recommender  # already trained: fit keeps it
    histories = dict(funnels) | {"new": funnels["a"][:1], "empty": ()}
    answers = recommender.predict(histories, k=20)
    assert set(answers) == set(funnels) | {"new"}  # empty histories get no prediction
    for answer in answers.values():
        assert isinstance(answer, NextBasket)
        assert 1 <= len(answer.basket) <= config.max_target_items
        assert len(set(answer.basket)) == len(answer.basket)
        assert set(answer.basket) <= set(vocabulary.items)
        assert len(answer.quantities) == len(answer.basket)
        assert len(answer.items) == len(answer.scores) == min(config.ranking_size, len(vocabulary) - 2)
        assert list(answer.scores) == sorted(answer.scores, reverse=True)
        assert answer.days_to_next is not None and answer.days_to_next >= 0
