# Conduit engine image. Build: docker build -t conduit .
# Run embedded (SQLite + in-process bus), channels and dashboard published:
#   docker run -p 2575:2575 -p 127.0.0.1:8080:8080 -v conduit-data:/data conduit
#   docker exec -i CONTAINER conduit users add admin --role admin --password-stdin < password-file
# Inside the container every channel source and the dashboard listen on 0.0.0.0
# (CONDUIT_LISTEN_HOST, CONDUIT_DASHBOARD_HOST), so published ports reach them; the channel
# files' own hosts (127.0.0.1 for a laptop) are overridden.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CONDUIT_DATA_DIR=/data \
    CONDUIT_LISTEN_HOST=0.0.0.0 CONDUIT_DASHBOARD_HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY conduit ./conduit
RUN pip install --no-cache-dir . && useradd --system --home /app conduit \
    && mkdir -p /data && chown conduit /data
COPY channels ./channels
COPY config ./config
USER conduit
VOLUME ["/data"]
EXPOSE 2575 8080
ENTRYPOINT ["conduit"]
CMD ["run", "channels/"]
