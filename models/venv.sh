# Sourced by models/build.sh and scripts/fetch-photos.sh (bash).
# ensure_venv ROOT: make ROOT/.venv a venv holding exactly models/requirements.txt.
# A stamp (hash of the requirements + the python3 version) makes reruns instant.

ensure_venv() {
    local root=$1
    local venv="$root/.venv" req="$root/models/requirements.txt"
    local stamp="$venv/.imgpipe-requirements" want lock_fd
    mkdir -p "$root/.cache"
    exec {lock_fd}>"$root/.cache/venv.lock"
    flock "$lock_fd"
    want="$(sha256sum "$req" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
    if [[ -x $venv/bin/python && -f $stamp && "$(<"$stamp")" == "$want" ]] \
        && "$venv/bin/python" -c '' 2>/dev/null; then
        exec {lock_fd}>&-
        return 0
    fi
    echo "venv: creating $venv from $req"
    rm -rf "$venv"
    if ! python3 -m venv "$venv"; then
        echo "error: 'python3 -m venv' failed (on Debian's own python install python3-venv)" >&2
        exec {lock_fd}>&-
        return 1
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
    exec {lock_fd}>&-
}
