import zipfile

from lens.segments.catalog import (
    product_frequencies,
    read_category_departments,
    read_product_subclasses,
)
from tests.unit.model.conftest import basket

TA_FENG = (
    '"TRANSACTION_DT","CUSTOMER_ID","AGE_GROUP","PIN_CODE","PRODUCT_SUBCLASS","PRODUCT_ID","AMOUNT","ASSET","SALES_PRICE"\n'
    '"11/1/2000","01","45-49","115","110411","P1","2","24","30"\n'
    '"11/2/2000","02","45-49","115","110411","P1","1","24","15"\n'
    '"11/3/2000","03","45-49","115","120107","P1","1","24","15"\n'
    '"11/3/2000","03","45-49","115","130000","P2","1","24","15"\n'
    '"11/4/2000","04","45-49","115","130000","P3","1","24","15"\n'
    '"11/4/2000","04","45-49","115","120000","P3","1","24","15"\n'
)


def test_subclasses_of_a_ta_feng_file_plain_or_zipped(tmp_path):
    plain = tmp_path / "ta_feng.csv"
    plain.write_text(TA_FENG)
    zipped = tmp_path / "ta_feng.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(plain, "ta_feng_all_months_merged.csv")
    # P1 sold twice as 110411, once as 120107 -> the majority; P3 tied -> the smaller code.
    expected = {"P1": "110411", "P2": "130000", "P3": "120000"}
    assert read_product_subclasses(plain) == expected
    assert read_product_subclasses(zipped) == expected


def test_a_file_without_subclasses_has_none(tmp_path):
    minimal = tmp_path / "tx.csv"
    minimal.write_text(
        "TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY\nT1,C1,P1,2024-01-01,2,1\n"
    )
    assert read_product_subclasses(minimal) is None


def test_a_catalog_with_the_minimal_schemas_product_column_is_read(tmp_path):
    catalog = tmp_path / "products.csv"  # what `lens data synth` writes
    catalog.write_text("PROD_ID,PRODUCT_SUBCLASS\nP0000,milk\nP0001,milk\nP0002,diapers\n")
    assert read_product_subclasses(catalog) == {"P0000": "milk", "P0001": "milk", "P0002": "diapers"}


def test_product_frequencies_count_baskets():
    funnels = {
        "a": (basket("a", 0, "milk tea"), basket("a", 1, "milk")),
        "b": (basket("b", 0, "tea milk"),),
    }
    assert product_frequencies(funnels) == {"milk": 3, "tea": 2}


def test_category_departments_come_from_the_department_column(tmp_path):
    catalog = tmp_path / "products.csv"
    # a subclass listed under two departments gets the one most of its rows name
    catalog.write_text("PROD_ID,PRODUCT_SUBCLASS,DEPARTMENT\nP1,milk,dairy\nP2,milk,dairy\n"
                       "P3,milk,drinks\nP4,diapers,baby\nP5,,baby\nP6,tea,\n")
    assert read_category_departments(catalog) == {"milk": "dairy", "diapers": "baby"}
    catalog.write_text("PROD_ID,PRODUCT_SUBCLASS\nP1,milk\n")
    assert read_category_departments(catalog) is None
