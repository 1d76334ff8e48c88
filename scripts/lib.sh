# Shared helpers for the scripts in this directory. Source it, don't run it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Sets REPO_ROOT, VENV_DIR (the oldest supported Home Assistant, 2025.4, on
# Python 3.13) and NEWEST_VENV_DIR (the newest Home Assistant the test harness
# pins, on Python >= 3.14.2), and provides find_python, ensure_venv,
# ensure_newest_venv, install_requirements and venv_packages.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${REPO_ROOT}/.venv"
NEWEST_VENV_DIR="${REPO_ROOT}/.venv-newest"
# Set by find_python.
PYTHON_BIN=""

# True (exit 0) when "$1" runs and is Python >= 3.13.
_python_ok() {
    [[ -n "${1:-}" ]] || return 1
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 13))' >/dev/null 2>&1
}

# Find a Python >= 3.13 and store its path in PYTHON_BIN.
# Order: $PYTHON, pyenv's 3.13.x installs, then python3.14, python3.13 and
# python3 on PATH. Exits 1 with instructions when none is usable.
find_python() {
    local candidate
    local -a candidates=()

    if [[ -n "${PYTHON:-}" ]]; then
        candidates+=("${PYTHON}")
    fi
    if command -v pyenv >/dev/null 2>&1; then
        local pyenv_root
        pyenv_root="$(pyenv root 2>/dev/null || true)"
        if [[ -n "${pyenv_root}" ]]; then
            # Newest 3.13.x first.
            while IFS= read -r candidate; do
                [[ -n "${candidate}" ]] && candidates+=("${candidate}")
            done < <(compgen -G "${pyenv_root}/versions/3.13.*/bin/python3.13" | sort -rV)
        fi
    fi
    for candidate in python3.14 python3.13 python3; do
        if command -v "${candidate}" >/dev/null 2>&1; then
            candidates+=("$(command -v "${candidate}")")
        fi
    done

    for candidate in "${candidates[@]}"; do
        if _python_ok "${candidate}"; then
            if [[ -n "${PYTHON:-}" && "${candidate}" != "${PYTHON}" ]]; then
                echo "warning: PYTHON=${PYTHON} is not a working Python >= 3.13;" \
                    "using ${candidate}" >&2
            fi
            PYTHON_BIN="${candidate}"
            return 0
        fi
    done

    if [[ -n "${PYTHON:-}" ]]; then
        echo "error: PYTHON=${PYTHON} is not a working Python >= 3.13." >&2
    fi
    echo "error: no Python >= 3.13 found." >&2
    echo "Install Python 3.13 (pyenv install 3.13.0) or set PYTHON=/path/to/python3.13" >&2
    exit 1
}

# Print the sha256 of a requirements file together with the files it pulls in
# with "-r other.txt", so that a change to an included file counts too.
_requirements_hash() {
    local file="$1"
    local dir line included
    dir="$(dirname "${file}")"
    {
        cat "${file}"
        while IFS= read -r line; do
            if [[ "${line}" =~ ^[[:space:]]*(-r|--requirement)[[:space:]]+([^[:space:]#]+) ]]; then
                included="${BASH_REMATCH[2]}"
                [[ "${included}" == /* ]] || included="${dir}/${included}"
                cat "${included}"
            fi
        done <"${file}"
    } | _sha256
}

# The sha256 of stdin, in hex; coreutils' when there (no Python start-up).
_sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum | cut -d' ' -f1
    else
        "${VENV_DIR}/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
    fi
}

# Install a requirements file (path relative to the repo root) into a venv
# (default .venv; the second argument names another), but only when its
# content changed since the last successful install.
# The stamp for requirements_foo.txt is <venv>/.requirements_foo.sha256.
install_requirements() {
    local file="${REPO_ROOT}/$1"
    local venv="${2:-${VENV_DIR}}"
    local name stamp wanted
    name="$(basename "$1" .txt)"
    stamp="${venv}/.${name}.sha256"

    if [[ ! -f "${file}" ]]; then
        echo "error: ${1} not found in ${REPO_ROOT}" >&2
        exit 1
    fi
    wanted="$(_requirements_hash "${file}")"
    if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${wanted}" ]]; then
        return 0
    fi

    echo "==> Installing ${1} into $(basename "${venv}")"
    if [[ ! -f "${venv}/.requirements_test.sha256" && ! -f "${venv}/.requirements_test_newest.sha256" ]]; then
        echo "    (the first install of pytest-homeassistant-custom-component and" \
            "Home Assistant takes a few minutes)"
    fi
    (cd "${REPO_ROOT}" && "${venv}/bin/python" -m pip install \
        --disable-pip-version-check --quiet -r "${file}")
    echo "${wanted}" >"${stamp}"
}

# True when "$1" runs and is Python >= 3.14.2.
_python314_ok() {
    [[ -n "${1:-}" ]] || return 1
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 14, 2))' >/dev/null 2>&1
}

# Create .venv-newest with a Python >= 3.14.2 (scripts/python314 finds one on
# PATH or in $PYTHON314, or provisions Debian unstable's on Debian machines)
# and install requirements_test_newest.txt into it when that file changed.
ensure_newest_venv() {
    local python wheels pip_wheel
    python="$("${REPO_ROOT}/scripts/python314")"
    # A Python unpacked from Debian's packages: its headers are in its own
    # prefix (for packages that build from source), and its pip wheel is
    # where Debian's ensurepip does not look.
    wheels="$(dirname "$(dirname "${python}")")/share/python-wheels"
    if [[ -d "$(dirname "$(dirname "${python}")")/include/python3.14" ]]; then
        export CPATH="$(dirname "$(dirname "${python}")")/include${CPATH:+:${CPATH}}"
    fi
    if ! _python314_ok "${NEWEST_VENV_DIR}/bin/python"; then
        rm -rf "${NEWEST_VENV_DIR}"
        echo "==> Creating .venv-newest with ${python}"
        pip_wheel="$(compgen -G "${wheels}/pip-*.whl" | head -n1 || true)"
        if [[ -n "${pip_wheel}" ]]; then
            "${python}" -m venv --without-pip "${NEWEST_VENV_DIR}"
            "${NEWEST_VENV_DIR}/bin/python" "${pip_wheel}/pip" install \
                --disable-pip-version-check --quiet --no-index "${pip_wheel}"
        else
            "${python}" -m venv "${NEWEST_VENV_DIR}"
        fi
    fi
    install_requirements requirements_test_newest.txt "${NEWEST_VENV_DIR}"
}

# Create .venv (when missing, broken or older than 3.13) and install
# requirements_test.txt into it when that file changed.
ensure_venv() {
    if ! _python_ok "${VENV_DIR}/bin/python"; then
        find_python
        if [[ -e "${VENV_DIR}" ]]; then
            echo "==> ${VENV_DIR} is broken or older than Python 3.13; recreating it"
            rm -rf "${VENV_DIR}"
        fi
        echo "==> Creating .venv with ${PYTHON_BIN}"
        "${PYTHON_BIN}" -m venv "${VENV_DIR}"
    fi
    install_requirements requirements_test.txt
}

# Print the distributions installed in a venv ("$1"), one name==version a
# line, sorted: two prints differ when something installed into the venv.
venv_packages() {
    "$1/bin/python" -c "import importlib.metadata as m
print('\n'.join(sorted({(d.metadata['Name'] + '==' + d.version).lower() for d in m.distributions()})))"
}

# Exit 1, naming the differences, unless the venv "$1" still has the
# packages "$2" (a venv_packages print) listed.
venv_unchanged() {
    local now
    now="$(venv_packages "$1")" || return 1
    if [[ "${now}" != "$2" ]]; then
        echo "error: something installed into $(basename "$1") (before < > after):" >&2
        diff <(echo "$2") <(echo "${now}") >&2 || true
        return 1
    fi
    echo "$(basename "$1") unchanged ($(wc -l <<<"${now}") packages)"
}
