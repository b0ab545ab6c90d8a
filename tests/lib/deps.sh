# deps.sh -- the Debian 12 packages archfarm needs to build, test and demo,
# and a function that installs the missing ones. Sourced by tests/run-all.sh
# and tests/demo.sh (the README's two commands), so both agree on one list.
#
#   af_deps_install     installs what is missing (apt-get update at most once);
#                       needs root only when something is missing.
#   AF_SKIP_DEPS=1      skips the check entirely (machines managed otherwise).

AF_APT_PACKAGES=(
    # build
    build-essential cmake pkg-config
    libzmq3-dev libczmq-dev libmsgpack-dev libcurl4-openssl-dev libssl-dev
    libyaml-dev libjansson-dev libarchive-dev zlib1g-dev libzstd-dev libcmocka-dev clang
    # real services and clients the tests check against
    docker-registry skopeo buildah apache2-utils openssl curl jq zstd pigz
    python3 python3-jsonschema python3-yaml python3-zmq python3-msgpack
    # the Ansible role checks (test_ansible_farm): lint, systemd-analyze security
    ansible-lint systemd
    # foreign architectures: cross compilers and qemu-user to run the results
    qemu-user-static gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
    libc6-dev-arm64-cross libc6-dev-armhf-cross golang-go
    # packages and cross builds (scripts/cross-build, the package tests)
    crossbuild-essential-arm64 crossbuild-essential-armhf dpkg-dev fakeroot file debootstrap
    # separate hosts, deployment, measurements
    iproute2 procps ansible-core valgrind time
    # shell completion (zsh -n) and man pages (man, groff, col)
    zsh man-db groff-base bsdextrautils
)

# Prints the packages of AF_APT_PACKAGES that dpkg does not report installed.
af_deps_missing() {
    local p
    for p in "${AF_APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            printf '%s\n' "$p"
        fi
    done
}

af_deps_install() {
    if [[ ${AF_SKIP_DEPS:-0} == 1 ]]; then
        echo "deps: AF_SKIP_DEPS=1, not checking packages"
        return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "deps: dpkg-query not found; this script targets Debian 12 (set AF_SKIP_DEPS=1 to skip)" >&2
        return 1
    fi
    local missing
    mapfile -t missing < <(af_deps_missing)
    if ((${#missing[@]} == 0)); then
        echo "deps: all ${#AF_APT_PACKAGES[@]} packages present"
        return 0
    fi
    echo "deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
    if [[ $(id -u) != 0 ]]; then
        echo "deps: installing packages needs root; run with sudo" >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Install straight away when the package lists already know every
    # package; refresh them once otherwise (fresh images ship none).
    if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    fi
}
