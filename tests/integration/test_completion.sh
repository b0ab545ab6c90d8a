#!/usr/bin/env bash
# test_completion -- the bash and zsh completion files (completion/).
#
# `bash -n` and `zsh -n` on the files; then the bash completion function is
# driven in a bash subshell the way readline does (COMP_WORDS, COMP_CWORD)
# against the built archfarm: `archfarm build --pl` completes to
# --platform, commands and flags come from --help, node names and
# platforms from an inventory given with -i (no agent needed: `inventory
# list` reads the file only).
set -euo pipefail
AF_SOURCE_DIR=${AF_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
AF_BIN=${AF_BIN:-$AF_SOURCE_DIR/build/bin}
BASH_FILE=$AF_SOURCE_DIR/completion/archfarm.bash
ZSH_FILE=$AF_SOURCE_DIR/completion/_archfarm
TMP=$(mktemp -d "${TMPDIR:-/tmp}/archfarm-completion.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*" >&2; }

bash -n "$BASH_FILE" || fail "bash -n $BASH_FILE"
ok "bash -n completion/archfarm.bash"
command -v zsh >/dev/null || fail "zsh is not installed (tests/lib/deps.sh installs it)"
zsh -n "$ZSH_FILE" || fail "zsh -n $ZSH_FILE"
ok "zsh -n completion/_archfarm"

cat >"$TMP/inv.yaml" <<'YAML'
all:
  children:
    archfarm_agents:
      hosts:
        builder-x86:
          ansible_host: 127.0.0.1
          archfarm_port: 7700
          archfarm_platforms: [linux/amd64]
          archfarm_insecure: true
        pi-arm:
          ansible_host: 127.0.0.2
          archfarm_port: 7700
          archfarm_platforms: [linux/arm64, linux/riscv64]
          archfarm_insecure: true
YAML
"$AF_BIN/archfarm" inventory check "$TMP/inv.yaml" >&2 || fail "test inventory is invalid"

# complete WORDS...: the candidates for the last word, one per line
complete_words() {
    PATH="$AF_BIN:$PATH" bash -c '
        source "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _archfarm
        printf "%s\n" "${COMPREPLY[@]}"' _ "$BASH_FILE" "$@"
}

expect() { # WHAT EXPECTED WORDS...
    local what=$1 want=$2
    shift 2
    local got
    got=$(complete_words "$@" | sort | tr '\n' ' ')
    [[ "$got" == "$want " ]] || fail "$what: completing '$*' gave '$got', expected '$want'"
    ok "$what: '$*' -> $want"
}

expect "a build flag" "--platform" archfarm build --pl
expect "flags from --help" "--platform --probe-timeout --progress --push" archfarm build --p
expect "global flags" "--inventory" archfarm --inv
expect "commands from --help" "imagetools inspect inventory" archfarm i
expect "progress modes" "gha" archfarm build --progress g
expect "node names from the inventory" "builder-x86 pi-arm" archfarm -i "$TMP/inv.yaml" inspect ""
expect "platforms from the inventory, in a comma list" \
    "linux/amd64,linux/riscv64" archfarm -i "$TMP/inv.yaml" build --platform linux/amd64,linux/ri
expect "inventory subcommands" "check list" archfarm inventory ""
expect "inventory list flags" "--format" archfarm inventory list --fo
ARCHFARM_INVENTORY="$TMP/inv.yaml" expect "node names from \$ARCHFARM_INVENTORY" "pi-arm" archfarm inspect p

echo "PASS: test_completion"
