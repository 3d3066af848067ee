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
