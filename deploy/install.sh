#!/bin/sh
# Install the edgefleet agent on a Linux device with systemd: the executable, a system user, the data
# directory, the systemd unit; enroll the device with the fleet; start the service.
#
# Idempotent: running it again (e.g. with a newer binary) replaces the executable and the unit, keeps the
# enrollment (an enrolled data directory is never enrolled again, so the token may be omitted) and restarts
# the agent when something changed.
#
# Environment, for packaging and tests:
#   EDGEFLEET_INSTALL_SKIP_USER=1  do not create the edgefleet user/group (it is provisioned otherwise)
set -eu

NAME=edgefleet-agent
SERVICE_USER=edgefleet
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

usage() {
  cat <<EOF
Usage: install.sh --binary FILE --server URL --token TOKEN [options]

Installs the edgefleet agent as the systemd service $NAME, enrolls this device with the fleet and
starts it.

  --binary FILE    the agent executable for this machine (edgefleet-agent-linux-x64 or -arm64)
  --server URL     fleet server, e.g. https://fleet:8080 (needed until the device is enrolled)
  --token TOKEN    one-time enrollment token from 'edgefleet enroll-token create' (needed until enrolled)
  --profile ID     firmware profile to enroll with (default: the token's)
  --tags K=V,...   tags to add to the device at enrollment (the token's tags win on a clash)
  --unit FILE      systemd unit to install (default: edgefleet-agent.service beside this script)
  --prefix DIR     install under DIR instead of / (images, tests); root is not required then
  --no-start       install and enroll, but do not touch systemd (image builds, chroots)
  -h, --help       this help

Installs:
  <prefix>/usr/local/bin/$NAME                       the executable (0755)
  <prefix>/etc/systemd/system/$NAME.service          the unit (0644)
  <prefix>/var/lib/$NAME                             data: enrollment, update state, models (0700)
  <prefix>/var/cache/$NAME                           native libraries the executable unpacks (0700)
Check the device afterwards with: $NAME doctor --data-dir /var/lib/$NAME
EOF
}

die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

say() {
  printf '%s\n' "$*"
}

BINARY=
SERVER=
TOKEN=
PROFILE=
TAGS=
UNIT_SRC=$SCRIPT_DIR/$NAME.service
PREFIX=/
START=1

# An option's value: the next argument, which must exist and not look like another option.
need_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (see --help)"; fi
  case $2 in --*) die "$1 needs a value, got the option $2 (see --help)" ;; esac
}

while [ "$#" -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --binary) need_value "$@"; BINARY=$2; shift 2 ;;
    --binary=*) BINARY=${1#*=}; shift ;;
    --server) need_value "$@"; SERVER=$2; shift 2 ;;
    --server=*) SERVER=${1#*=}; shift ;;
    --token) need_value "$@"; TOKEN=$2; shift 2 ;;
    --token=*) TOKEN=${1#*=}; shift ;;
    --profile) need_value "$@"; PROFILE=$2; shift 2 ;;
    --profile=*) PROFILE=${1#*=}; shift ;;
    --tags) need_value "$@"; TAGS=$2; shift 2 ;;
    --tags=*) TAGS=${1#*=}; shift ;;
    --unit) need_value "$@"; UNIT_SRC=$2; shift 2 ;;
    --unit=*) UNIT_SRC=${1#*=}; shift ;;
    --prefix) need_value "$@"; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --no-start) START=0; shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# "/" → "", "/tmp/root/" → "/tmp/root": every installed path is $ROOT/<absolute path>.
ROOT=$(printf '%s' "$PREFIX" | sed 's:/*$::')
case $PREFIX in /*) ;; *) die "--prefix must be an absolute path, got '$PREFIX'" ;; esac

BIN_PATH=$ROOT/usr/local/bin/$NAME
UNIT_PATH=$ROOT/etc/systemd/system/$NAME.service
DATA_DIR=$ROOT/var/lib/$NAME
CACHE_DIR=$ROOT/var/cache/$NAME
IDENTITY=$DATA_DIR/agent.json

# ---- checks: everything that can be refused is refused before anything is written ---------------------

if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
  die "must run as root to install into / (try: sudo $0 ...), or pass --prefix DIR"
fi

[ -n "$BINARY" ] || die "--binary is required: the agent executable for this machine (see --help)"
[ -f "$BINARY" ] || die "--binary $BINARY: no such file"
[ -r "$BINARY" ] || die "--binary $BINARY: not readable"
[ -f "$UNIT_SRC" ] || die "systemd unit $UNIT_SRC not found (keep $NAME.service beside install.sh, or pass --unit)"

# The kernel's architecture, in the ELF names below.
host_arch() {
  case $(uname -m) in
    x86_64 | amd64) echo x86_64 ;;
    aarch64 | arm64) echo aarch64 ;;
    armv6* | armv7* | armv8l | arm) echo arm ;;
    i386 | i486 | i586 | i686) echo i386 ;;
    riscv64) echo riscv64 ;;
    *) uname -m ;;
  esac
}

# The architecture an ELF file is built for, from e_machine (bytes 18-19, in the byte order of byte 5);
# "script" for a #! file (architecture-independent); empty for anything else.
binary_arch() {
  # Split on purpose: one positional parameter per byte.
  # shellcheck disable=SC2046
  set -- $(od -An -v -tu1 -N20 "$1")
  if [ "$#" -ge 2 ] && [ "$1" = 35 ] && [ "$2" = 33 ]; then
    echo script
    return
  fi
  if [ "$#" -lt 20 ] || [ "$1" != 127 ] || [ "$2" != 69 ] || [ "$3" != 76 ] || [ "$4" != 70 ]; then
    return
  fi
  if [ "$6" = 2 ]; then machine=$((${19} * 256 + ${20})); else machine=$((${20} * 256 + ${19})); fi
  case $machine in
    62) echo x86_64 ;;
    183) echo aarch64 ;;
    40) echo arm ;;
    3) echo i386 ;;
    243) echo riscv64 ;;
    *) echo "elf-machine-$machine" ;;
  esac
}

HOST_ARCH=$(host_arch)
BIN_ARCH=$(binary_arch "$BINARY")
case $BIN_ARCH in
  '') die "--binary $BINARY is not an executable (neither an ELF file nor a #! script)" ;;
  script) say "note: $BINARY is a script; its architecture is not checked" ;;
  "$HOST_ARCH") ;;
  *)
    case $HOST_ARCH in x86_64) want=x64 ;; aarch64) want=arm64 ;; *) want=$HOST_ARCH ;; esac
    die "--binary $BINARY is built for $BIN_ARCH, but this machine is $HOST_ARCH (uname -m): use edgefleet-agent-linux-$want"
    ;;
esac

ENROLLED=0
[ -f "$IDENTITY" ] && ENROLLED=1
if [ "$ENROLLED" = 0 ]; then
  [ -n "$SERVER" ] || die "--server is required: this device is not enrolled yet (no $IDENTITY)"
  [ -n "$TOKEN" ] || die "--token is required: this device is not enrolled yet (no $IDENTITY); create one with 'edgefleet enroll-token create'"
  case $SERVER in
    http://* | https://*) ;;
    *) die "--server must be an http:// or https:// URL, got '$SERVER'" ;;
  esac
fi
if [ -n "$TAGS" ]; then
  old_ifs=$IFS
  IFS=,
  set -f # split on commas only: a value with * stays as it is
  for pair in $TAGS; do
    case $pair in
      ?*=*) ;;
      *) die "--tags: '$pair' is not key=value (expected k=v,k2=v2)" ;;
    esac
  done
  set +f
  IFS=$old_ifs
fi

if [ "$START" = 1 ] && ! command -v systemctl >/dev/null 2>&1; then
  die "systemctl not found: this installer needs systemd (or pass --no-start to install the files only)"
fi

# ---- the system user -----------------------------------------------------------------------------------

user_exists() {
  id -u "$1" >/dev/null 2>&1
}

group_exists() {
  if command -v getent >/dev/null 2>&1; then
    getent group "$1" >/dev/null 2>&1
  else
    grep -q "^$1:" /etc/group
  fi
}

if [ "${EDGEFLEET_INSTALL_SKIP_USER:-}" != 1 ]; then
  if ! group_exists "$SERVICE_USER"; then
    command -v groupadd >/dev/null 2>&1 ||
      die "groupadd not found: create the group $SERVICE_USER yourself and set EDGEFLEET_INSTALL_SKIP_USER=1"
    groupadd --system "$SERVICE_USER" || die "could not create the group $SERVICE_USER"
    say "created group $SERVICE_USER"
  fi
  if ! user_exists "$SERVICE_USER"; then
    command -v useradd >/dev/null 2>&1 ||
      die "useradd not found: create the system user $SERVICE_USER yourself and set EDGEFLEET_INSTALL_SKIP_USER=1"
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/sbin/nologin
    [ -x "$nologin" ] || nologin=/bin/false
    useradd --system --no-create-home --home-dir "/var/lib/$NAME" --shell "$nologin" \
      --gid "$SERVICE_USER" "$SERVICE_USER" || die "could not create the user $SERVICE_USER"
    say "created system user $SERVICE_USER"
  fi
fi

# ---- files ---------------------------------------------------------------------------------------------

# Copy $1 to $2 with mode $3 via a temp file and a rename, so a running agent's executable is never
# half-written. Prints "installed" (was missing), "updated" (was different) or nothing (was the same).
install_file() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    chmod "$3" "$2"
    return
  fi
  what=installed
  [ ! -e "$2" ] || what=updated
  mkdir -p "$(dirname "$2")"
  tmp=$2.install.$$
  cp "$1" "$tmp" || die "could not write $tmp"
  chmod "$3" "$tmp"
  mv -f "$tmp" "$2" || die "could not replace $2"
  echo "$what"
}

# A directory only the service user may enter.
private_dir() {
  mkdir -p "$1" || die "could not create $1"
  chmod 0700 "$1"
  chown "$SERVICE_USER:$SERVICE_USER" "$1" || die "could not give $1 to $SERVICE_USER"
}

BIN_CHANGED=$(install_file "$BINARY" "$BIN_PATH" 0755) || exit 1
say "${BIN_CHANGED:-unchanged}: $BIN_PATH"
UNIT_CHANGED=$(install_file "$UNIT_SRC" "$UNIT_PATH" 0644) || exit 1
say "${UNIT_CHANGED:-unchanged}: $UNIT_PATH"
private_dir "$DATA_DIR"
private_dir "$CACHE_DIR"

# ---- enrollment ----------------------------------------------------------------------------------------

# Run the agent as the service user, as the unit will (its files must be the user's, not root's). A
# --prefix install by someone else than root, or one without the user, runs it as the caller.
as_service_user() {
  if [ "$(id -u)" != 0 ] || ! user_exists "$SERVICE_USER"; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u "$SERVICE_USER" -- "$@"
  elif command -v setpriv >/dev/null 2>&1; then
    setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups -- "$@"
  else
    die "neither runuser nor setpriv found: cannot run the agent as $SERVICE_USER"
  fi
}

if [ "$ENROLLED" = 1 ]; then
  device=$(sed -n 's/^ *"deviceId": *"\([^"]*\)".*/\1/p' "$IDENTITY" | head -n 1)
  say "already enrolled as ${device:-?} ($IDENTITY): not enrolling again${TOKEN:+ (the token stays unused)}"
else
  set -- enroll --server "$SERVER" --token "$TOKEN" --data-dir "$DATA_DIR"
  [ -z "$PROFILE" ] || set -- "$@" --profile "$PROFILE"
  [ -z "$TAGS" ] || set -- "$@" --tags "$TAGS"
  as_service_user env EDGEFLEET_CACHE_DIR="$CACHE_DIR" ORT_DISABLE_TELEMETRY=1 "$BIN_PATH" "$@" ||
    die "enrollment with $SERVER failed (the agent's message is above); the files are in place: fix the cause and run install.sh again"
fi

# ---- systemd -------------------------------------------------------------------------------------------

if [ "$START" = 0 ]; then
  say "not started (--no-start): run 'systemctl daemon-reload && systemctl enable --now $NAME' to start it"
  exit 0
fi
systemctl daemon-reload || die "systemctl daemon-reload failed"
systemctl enable --now "$NAME" || die "could not enable and start $NAME (see: systemctl status $NAME)"
# A re-install with a new executable or unit: `enable --now` leaves a running agent as it is.
if [ "$BIN_CHANGED" = updated ] || [ "$UNIT_CHANGED" = updated ]; then
  systemctl try-restart "$NAME" || die "could not restart $NAME (see: systemctl status $NAME)"
  say "restarted $NAME"
fi
say "$NAME is running; check it with: $NAME doctor --data-dir /var/lib/$NAME"
