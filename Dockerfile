# ringback: the API and workers in one image (`ringback serve`, `ringback worker`).
# Build: docker build -t ringback .      Run with PostgreSQL: docker compose up (compose.yaml)
#
# Two stages: the wheels are built in the first (compilers stay there), the second has Python,
# the wheels and the Debian libraries the dialers load at run time: libspandsp2 (fax),
# espeak-ng (<Speak> text-to-speech). It runs as an unprivileged user.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends libspandsp2 espeak-ng \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/ringback --uid 10001 ringback
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER ringback
WORKDIR /var/lib/ringback
ENV RINGBACK_HOST=0.0.0.0 \
    RINGBACK_PORT=8080 \
    RINGBACK_STORAGE_DIR=/var/lib/ringback/storage \
    RINGBACK_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/ringback/storage"]
EXPOSE 8080 5060/udp
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"
ENTRYPOINT ["ringback"]
CMD ["serve"]
