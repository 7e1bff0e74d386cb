#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing:
#   postgresql        the server `make test` starts for its PostgreSQL pass
#   chromium          the headless browser of the browser tests (/usr/bin/chromium)
#   fonts-dejavu-core fonts for the PDFs and the screenshots
#   poppler-utils     pdftotext/pdftoppm, used to read rendered PDFs back
#   zbar-tools        zbarimg, which reads the QR code on a rendered closeout packet's cover
#   redis-server      the task broker of the scale-out run (several web and worker processes)
# With arguments, only those packages are checked.
set -euo pipefail

is_installed() {
    case "$1" in
        postgresql) compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null ;;
        chromium) [[ -x /usr/bin/chromium ]] ;;
        fonts-dejavu-core) [[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] ;;
        poppler-utils) command -v pdftotext >/dev/null && command -v pdftoppm >/dev/null ;;
        zbar-tools) command -v zbarimg >/dev/null ;;
        redis-server) [[ -x /usr/bin/redis-server ]] ;;
        *) dpkg -s "$1" >/dev/null 2>&1 ;;
    esac
}

if [[ $# -gt 0 ]]; then
    wanted=("$@")
else
    wanted=(postgresql chromium fonts-dejavu-core poppler-utils zbar-tools redis-server)
fi

missing=()
for package in "${wanted[@]}"; do
    is_installed "$package" || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "ensure_system_deps: installing ${missing[*]}" >&2
if ! command -v apt-get >/dev/null; then
    echo "ensure_system_deps: apt-get not found; install ${missing[*]} by hand" >&2
    exit 1
fi
if [[ "$(id -u)" -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    echo "ensure_system_deps: not root and no sudo; install ${missing[*]} by hand" >&2
    exit 1
fi
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

for package in "${missing[@]}"; do
    if ! is_installed "$package"; then
        echo "ensure_system_deps: $package is still missing after apt-get install" >&2
        exit 1
    fi
done
