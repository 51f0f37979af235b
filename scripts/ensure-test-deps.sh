#!/usr/bin/env bash
# Makes sure the Debian packages the test suite needs are installed (DESIGN §8: tests start real
# servers). Idempotent and quiet when everything is there; installs what is missing with apt-get
# (as root, or through sudo), never asking anything (CI has no stdin).
#
# To add a dependency, add a "binary package" line to REQUIRED below. The binary is either an
# absolute path or a command name looked up on PATH and in the sbin folders (sshd lives in
# /usr/sbin, which is not on a non-root user's PATH).
set -euo pipefail

REQUIRED=(
  "/usr/lib/postgresql/15/bin/initdb postgresql-15"
  "/usr/lib/postgresql/15/bin/pg_ctl postgresql-15"
  "/usr/lib/postgresql/15/bin/postgres postgresql-15"
  "/usr/lib/postgresql/15/bin/psql postgresql-client-15"
  "/usr/lib/postgresql/15/bin/pg_dump postgresql-client-15"
  "/usr/lib/postgresql/15/bin/pg_restore postgresql-client-15"
  "sshd openssh-server"
  "ssh-keygen openssh-client"
  "zstd zstd"
  "lz4 lz4"
  "etcd etcd-server"
  "etcdctl etcd-client"
  "influxd influxdb"
  "influx influxdb-client"
)

have() {
  case "$1" in
    /*) [[ -x "$1" ]] ;;
    *)
      command -v "$1" >/dev/null 2>&1 && return 0
      local dir
      for dir in /usr/local/sbin /usr/sbin /sbin; do
        [[ -x "$dir/$1" ]] && return 0
      done
      return 1
      ;;
  esac
}

missing=()
for entry in "${REQUIRED[@]}"; do
  read -r bin pkg <<<"$entry"
  if ! have "$bin"; then
    case " ${missing[*]-} " in
      *" $pkg "*) ;;
      *) missing+=("$pkg") ;;
    esac
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && { [[ -t 0 ]] || sudo -n true 2>/dev/null; }; then
  as_root=(sudo)   # may ask for a password on a terminal; never without one
  [[ -t 0 ]] || as_root=(sudo -n)
else
  echo "ensure-test-deps: the tests need these Debian packages: ${missing[*]}" >&2
  echo "ensure-test-deps: install them as root with:" >&2
  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "ensure-test-deps: installing ${missing[*]}" >&2
run_root() { ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive "$@"; }
run_root apt-get update -qq </dev/null >&2
run_root apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >&2

still=()
for entry in "${REQUIRED[@]}"; do
  read -r bin pkg <<<"$entry"
  have "$bin" || still+=("$bin (from $pkg)")
done
if [[ ${#still[@]} -gt 0 ]]; then
  echo "ensure-test-deps: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
