# Sourced by scripts/install_*.sh: fetch Debian packages and unpack them without installing anything.
#
#   already_installed TOOL DEST      exit the calling script with 0 if TOOL is in DEST or on the PATH
#   deb_extract WORK PKG...          download PKG... (apt-get update first if the lists lack the first one)
#                                    and unpack each under WORK/root; nothing is configured or started
# apt-get update needs root; apt-get download runs as the _apt user when it can, so WORK is made writable.

already_installed() {
  local tool="$1" dest="$2"
  if [[ -x "$dest/$tool" ]]; then
    echo "$tool already installed: $dest/$tool"
    exit 0
  fi
  if command -v "$tool" >/dev/null 2>&1; then
    echo "$tool already installed: $(command -v "$tool")"
    exit 0
  fi
}

deb_extract() {
  local work="$1"
  shift
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$(basename "$0"): apt-get not found; install $1 from your distribution" >&2
    exit 1
  fi
  if ! apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -qq
  fi
  chmod 0777 "$work"
  (
    cd "$work"
    apt-get download -qq "$@"
    for deb in ./*.deb; do dpkg -x "$deb" root; done
  )
}
