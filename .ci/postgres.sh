# Sourced by .ci/run (and by hand, to run the PostgreSQL tests locally): start_postgres starts a
# throwaway PostgreSQL cluster with TLS on, stop_postgres stops and removes it.
#
# The cluster: initdb and pg_ctl as the `postgres` user (when root) in a folder of its own, on a
# free port of 127.0.0.1, `ssl=on` with a server certificate (IP 127.0.0.1) from a throwaway CA
# made here with the openssl CLI; the keys live only in that folder and go with it. Two roles'
# connections are steered by pg_hba: `oncall_tls_only` may connect only over TLS, and
# `oncall_plain_only` only without (what the TLS tests of sslmode need). Exports DATABASE_URL
# (user postgres, no sslmode: libpq's default, prefer) and ONCALL_TEST_PG_TLS_DIR (ca.crt, the
# CA; other-ca.crt, a CA that signed nothing here). A DATABASE_URL already set is used as it is.

start_postgres() {
    if [ -n "${DATABASE_URL:-}" ]; then
        echo "== PostgreSQL: DATABASE_URL from the environment"
        return
    fi
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "== PostgreSQL is missing: installing it"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    if ! command -v openssl > /dev/null; then
        echo "== openssl is missing: installing it"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl > /dev/null
    fi
    PG_DIR=$(mktemp -d /tmp/oncall-ci-pg.XXXXXX)
    PG_AS=()
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$PG_DIR"
        PG_AS=(runuser -u postgres --)
    fi
    PG_CTL=("${PG_AS[@]}" "$bin/pg_ctl" -D "$PG_DIR/data")
    "${PG_AS[@]}" "$bin/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync > "$PG_DIR/initdb.log"
    make_test_certificates "$PG_DIR/tls"
    local hba="$PG_DIR/data/pg_hba.conf"
    {
        echo "hostnossl all oncall_tls_only 127.0.0.1/32 reject"
        echo "hostssl all oncall_plain_only 127.0.0.1/32 reject"
        cat "$hba"
    } > "$PG_DIR/pg_hba.conf" && cp "$PG_DIR/pg_hba.conf" "$hba"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres "$PG_DIR/tls" "$hba"
    fi
    local port
    for _ in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 20000))
        if "${PG_CTL[@]}" -l "$PG_DIR/server.log" -w -t 30 start \
            -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 \
                -c ssl=on -c ssl_cert_file=$PG_DIR/tls/server.crt -c ssl_key_file=$PG_DIR/tls/server.key" \
            > /dev/null; then
            export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
            export ONCALL_TEST_PG_TLS_DIR="$PG_DIR/tls"
            echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, TLS on"
            return
        fi
    done
    cat "$PG_DIR/server.log"
    echo "PostgreSQL did not start" >&2
    exit 1
}

# A throwaway CA and a server certificate for 127.0.0.1 signed by it (ECDSA P-256, two days),
# and a second CA that signed nothing (a client trusting only it must refuse the server).
make_test_certificates() {
    local dir=$1
    mkdir -p "$dir"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    for ca in ca other-ca; do
        openssl req -x509 "${ec[@]}" -keyout "$dir/$ca.key" -out "$dir/$ca.crt" -days 2 \
            -subj "/CN=oncall-sync test $ca" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2> /dev/null
    done
    openssl req "${ec[@]}" -keyout "$dir/server.key" -out "$dir/server.csr" \
        -subj "/CN=127.0.0.1" 2> /dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > "$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -out "$dir/server.crt" -days 2 -extfile "$dir/server.ext" 2> /dev/null
    rm -f "$dir/ca.key" "$dir/other-ca.key" "$dir/server.csr"
    chmod 600 "$dir/server.key"
}

stop_postgres() {
    if [ -n "${PG_DIR:-}" ]; then
        "${PG_CTL[@]}" -m immediate stop > /dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
