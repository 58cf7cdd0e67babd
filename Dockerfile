# Conduit engine image. Build: docker build -t conduit .
# Run embedded (SQLite + in-process bus):  docker run -p 2575:2575 -v conduit-data:/data conduit
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CONDUIT_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY conduit ./conduit
RUN pip install --no-cache-dir . && useradd --system --home /app conduit \
    && mkdir -p /data && chown conduit /data
COPY channels ./channels
COPY config ./config
USER conduit
VOLUME ["/data"]
EXPOSE 2575
ENTRYPOINT ["conduit"]
CMD ["run", "channels/"]
