# The LENS image for docker-compose: the `lens` CLI with every service, on the pinned dependencies.
FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock \
 && pip install --no-cache-dir --no-deps tensorflow-serving-api==2.21.0
COPY pyproject.toml ./
COPY protos ./protos
COPY lens ./lens
COPY services ./services
COPY serving ./serving
COPY deploy ./deploy
RUN python -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. protos/lens/v1/*.proto \
 && pip install --no-cache-dir --no-deps --no-build-isolation -e .
USER nobody
CMD ["lens", "--help"]
