# tests/lib/registry.sh -- start and stop a real registry for tests (source me).
#
# Uses Debian's `docker-registry` (CNCF distribution) on a free 127.0.0.1 port
# with its storage in a directory the caller owns.
#
#   af_registry_start DIR           plain http, no auth
#   af_registry_start_htpasswd DIR USER PASS   http + htpasswd basic auth
#   af_registry_start_tls DIR       https with a self-signed cert
#                                   (sets AF_REGISTRY_CA to the cert file)
#   af_registry_start_tls_htpasswd DIR USER PASS   https + htpasswd basic auth
#   af_registry_stop                kill it (safe to call twice)
#
# After a start: AF_REGISTRY=127.0.0.1:PORT, AF_REGISTRY_PID, AF_REGISTRY_LOG.
# Each start fails loudly (message on stderr, non-zero return) if the binary
# is missing or /v2/ does not answer within ~10 s.

af_registry__free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# af_registry__run DIR SCHEME EXTRA_HTTP_YAML AUTH_YAML
af_registry__run() {
    local dir=$1 scheme=$2 http_extra=$3 auth_yaml=$4
    if ! command -v docker-registry >/dev/null 2>&1; then
        echo "registry.sh: docker-registry not installed (apt-get install docker-registry)" >&2
        return 1
    fi
    if [ -n "${AF_REGISTRY_PID:-}" ]; then
        echo "registry.sh: a registry is already running (pid $AF_REGISTRY_PID); stop it first" >&2
        return 1
    fi
    mkdir -p "$dir/storage" || return 1
    local port
    port=$(af_registry__free_port) || { echo "registry.sh: no free port" >&2; return 1; }
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: archfarm-test-only
$http_extra
$auth_yaml
EOF
    AF_REGISTRY_LOG="$dir/registry.log"
    docker-registry serve "$dir/config.yml" >"$AF_REGISTRY_LOG" 2>&1 &
    AF_REGISTRY_PID=$!
    AF_REGISTRY=127.0.0.1:$port
    export AF_REGISTRY AF_REGISTRY_PID AF_REGISTRY_LOG
    local i code curl_opts=()
    [ "$scheme" = https ] && curl_opts=(--cacert "$AF_REGISTRY_CA")
    for i in $(seq 1 100); do
        # any HTTP answer (200, or 401 with auth) means it is serving
        code=$(curl -s -o /dev/null -w '%{http_code}' "${curl_opts[@]}" \
            "$scheme://$AF_REGISTRY/v2/" 2>/dev/null) || code=000
        if [ "$code" = 200 ] || [ "$code" = 401 ]; then
            return 0
        fi
        if ! kill -0 "$AF_REGISTRY_PID" 2>/dev/null; then
            echo "registry.sh: docker-registry exited at start; its log:" >&2
            cat "$AF_REGISTRY_LOG" >&2
            unset AF_REGISTRY_PID
            return 1
        fi
        sleep 0.1
    done
    echo "registry.sh: docker-registry on $AF_REGISTRY did not answer /v2/ in 10 s; its log:" >&2
    cat "$AF_REGISTRY_LOG" >&2
    af_registry_stop
    return 1
}

af_registry_start() {
    af_registry__run "$1" http "" ""
}

# Basic auth from an htpasswd file (bcrypt, as distribution requires).
af_registry_start_htpasswd() {
    local dir=$1 user=$2 pass=$3
    mkdir -p "$dir" || return 1
    if ! command -v htpasswd >/dev/null 2>&1; then
        echo "registry.sh: htpasswd not installed (apt-get install apache2-utils)" >&2
        return 1
    fi
    htpasswd -Bbn "$user" "$pass" >"$dir/htpasswd" || return 1
    af_registry__run "$dir" http "" "auth:
  htpasswd:
    realm: archfarm-test
    path: $dir/htpasswd"
}

# TLS with a fresh self-signed certificate for 127.0.0.1 and localhost.
af_registry_start_tls() {
    local dir=$1
    mkdir -p "$dir" || return 1
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 || {
        echo "registry.sh: openssl could not make a certificate" >&2
        return 1
    }
    AF_REGISTRY_CA="$dir/cert.pem"
    export AF_REGISTRY_CA
    af_registry__run "$dir" https "  tls:
    certificate: $dir/cert.pem
    key: $dir/key.pem" ""
}

# TLS (as af_registry_start_tls) and htpasswd Basic auth.
af_registry_start_tls_htpasswd() {
    local dir=$1 user=$2 pass=$3
    mkdir -p "$dir" || return 1
    htpasswd -Bbn "$user" "$pass" >"$dir/htpasswd" || return 1
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 || return 1
    AF_REGISTRY_CA="$dir/cert.pem"
    export AF_REGISTRY_CA
    af_registry__run "$dir" https "  tls:
    certificate: $dir/cert.pem
    key: $dir/key.pem" "auth:
  htpasswd:
    realm: archfarm-test
    path: $dir/htpasswd"
}

af_registry_stop() {
    if [ -n "${AF_REGISTRY_PID:-}" ]; then
        kill "$AF_REGISTRY_PID" 2>/dev/null
        local i
        for i in $(seq 1 50); do
            kill -0 "$AF_REGISTRY_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$AF_REGISTRY_PID" 2>/dev/null
        wait "$AF_REGISTRY_PID" 2>/dev/null
    fi
    unset AF_REGISTRY_PID
    return 0
}
