#!/bin/sh
# The API gateway in a container: render deploy/gateway/nginx.conf.template from the environment
# (every `{{NAME}}` placeholder must be set, as devstack's render_template demands), then run nginx
# in the foreground with its logs on stdout/stderr.
set -eu

TEMPLATE=${GATEWAY_TEMPLATE:-/etc/streamplatform/nginx.conf.template}
: "${PREFIX:?PREFIX (a writable folder for nginx, e.g. an emptyDir) must be set}"
for sub in logs tmp/body tmp/proxy tmp/fastcgi tmp/uwsgi tmp/scgi; do
    mkdir -p "$PREFIX/$sub"
done
# `kubectl logs` shows what nginx writes to its log files
ln -sf /dev/stdout "$PREFIX/logs/access.log"

# HLS_ORIGINS=<node>=<host:port>,...: one upstream per ingest node and the map from /hls/<node>/
# to it (the same text as devstack.stack.hls_origin_values)
: "${HLS_ORIGINS:?HLS_ORIGINS (<node>=<host:port>,... for every ingest node) must be set}"
HLS_ORIGIN_UPSTREAMS=""
HLS_ORIGIN_MAP=""
old_ifs=$IFS
IFS=,
for item in $HLS_ORIGINS; do
    [ -n "$item" ] || continue
    node=${item%%=*}
    address=${item#*=}
    case $node in
        ''|-*|*-|*[!a-z0-9-]*) echo "HLS_ORIGINS: $node is not a node name (a DNS label)" >&2; exit 1 ;;
    esac
    case $address in
        ''|*[!A-Za-z0-9.:_-]*|"$item") echo "HLS_ORIGINS: $item is not <node>=<host:port>" >&2; exit 1 ;;
    esac
    name=hls_origin_$(printf %s "$node" | tr - _)
    HLS_ORIGIN_UPSTREAMS="$HLS_ORIGIN_UPSTREAMS${HLS_ORIGIN_UPSTREAMS:+
    }upstream $name { server $address; keepalive 64; }"
    HLS_ORIGIN_MAP="$HLS_ORIGIN_MAP${HLS_ORIGIN_MAP:+
        }~^/hls/$node/ $name;"
done
IFS=$old_ifs
[ -n "$HLS_ORIGIN_MAP" ] || { echo "HLS_ORIGINS names no ingest node" >&2; exit 1; }
export HLS_ORIGIN_UPSTREAMS HLS_ORIGIN_MAP

# CHAT_WS_URL (optional): the chat edges' published address; it lands in the page's HTML and CSP,
# so only a plain ws(s) URL passes (the same rule as devstack.stack.checked_chat_ws_url)
CHAT_WS_URL=${CHAT_WS_URL:-}
if [ -n "$CHAT_WS_URL" ] && ! printf %s "$CHAT_WS_URL" | grep -Eqx 'wss?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?'; then
    echo "CHAT_WS_URL must be a ws:// or wss:// URL without query or quotes" >&2; exit 1
fi
export CHAT_WS_URL

# POSIX awk (busybox's too): replace each {{NAME}} with ENVIRON[NAME]; a missing one stops the start
awk '
{
    line = $0; out = ""
    while (match(line, /\{\{ *[A-Z0-9_]+ *\}\}/)) {
        name = substr(line, RSTART + 2, RLENGTH - 4)
        gsub(/ /, "", name)
        if (!(name in ENVIRON)) {
            print "gateway template needs " name ", which the environment does not set" > "/dev/stderr"
            failed = 1
            exit 1
        }
        out = out substr(line, 1, RSTART - 1) ENVIRON[name]
        line = substr(line, RSTART + RLENGTH)
    }
    print out line
}
END { if (failed) exit 1 }' "$TEMPLATE" > "$PREFIX/nginx.conf"

if [ "${RENDER_ONLY:-}" = "1" ]; then
    exit 0
fi
exec nginx -p "$PREFIX" -c "$PREFIX/nginx.conf" -e /dev/stderr -g 'daemon off;'
