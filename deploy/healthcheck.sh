#!/usr/bin/env bash
# imgpipe-healthcheck [PATH]: exit 0 when this container's imgpipe answers GET PATH (default
# /healthz) with 200. Installed in the image as /usr/local/bin/imgpipe-healthcheck for Docker's
# HEALTHCHECK and compose; uses bash's /dev/tcp so the image needs no curl. The port comes from
# IMGPIPE_LISTEN (the image sets 0.0.0.0:8080).
set -euo pipefail
path=${1:-/healthz}
listen=${IMGPIPE_LISTEN:-0.0.0.0:8080}
port=${listen##*:}
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 5 status <&3
exec 3<&-
[[ $status =~ ^HTTP/1\.[01]\ 200 ]]
