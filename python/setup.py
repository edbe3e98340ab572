"""Build the natten._C extension against an installed or a built libnatten.

Where libnatten is looked for, first match wins:
  1. NATTEN_INCLUDE_DIR and NATTEN_LIB_DIR   (explicit folders of natten.h and libnatten.so)
  2. NATTEN_BUILD_DIR                          (a configured and built build tree: the library is
                                                in its .libs/, natten.h in the source tree's lib/)
  3. NATTEN_PREFIX                             (an install prefix: PREFIX/include, PREFIX/lib)
  4. pkg-config natten                         (after `make install`; set PKG_CONFIG_PATH to
                                                PREFIX/lib/pkgconfig for a non-system prefix)
NATTEN_DLPACK_INCLUDE_DIR adds the folder holding dlpack/dlpack.h when it is not on the compiler's
default path.  The library folder is written into the extension's rpath, so no LD_LIBRARY_PATH is
needed at run time.
"""
import os
import re
import shlex
import subprocess
import sys

from setuptools import Extension, setup


def _pkg_config():
    try:
        cflags = subprocess.check_output(["pkg-config", "--cflags", "natten"], text=True)
        libs = subprocess.check_output(["pkg-config", "--libs", "natten"], text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    inc = [f[2:] for f in shlex.split(cflags) if f.startswith("-I")]
    libdirs = [f[2:] for f in shlex.split(libs) if f.startswith("-L")]
    return inc, libdirs


def _build_tree(build):
    build = os.path.abspath(build)
    srcdir = build
    try:
        with open(os.path.join(build, "Makefile")) as f:
            m = re.search(r"^abs_top_srcdir\s*=\s*(.*)$", f.read(), re.M)
        if m:
            srcdir = m.group(1).strip()
    except OSError:
        sys.exit(f"setup.py: NATTEN_BUILD_DIR={build} has no Makefile; configure and build it first")
    return [os.path.join(srcdir, "lib")], [os.path.join(build, ".libs")]


def find_natten():
    env = os.environ
    if env.get("NATTEN_INCLUDE_DIR") and env.get("NATTEN_LIB_DIR"):
        return [env["NATTEN_INCLUDE_DIR"]], [env["NATTEN_LIB_DIR"]], "NATTEN_INCLUDE_DIR/NATTEN_LIB_DIR"
    if env.get("NATTEN_BUILD_DIR"):
        inc, lib = _build_tree(env["NATTEN_BUILD_DIR"])
        return inc, lib, "NATTEN_BUILD_DIR"
    if env.get("NATTEN_PREFIX"):
        p = os.path.abspath(env["NATTEN_PREFIX"])
        return [os.path.join(p, "include")], [os.path.join(p, "lib")], "NATTEN_PREFIX"
    pc = _pkg_config()
    if pc is not None:
        return pc[0], pc[1], "pkg-config"
    sys.exit("setup.py: libnatten not found: set NATTEN_BUILD_DIR, NATTEN_PREFIX, "
             "NATTEN_INCLUDE_DIR+NATTEN_LIB_DIR, or PKG_CONFIG_PATH (see python/README.md)")


inc, libdirs, how = find_natten()
if os.environ.get("NATTEN_DLPACK_INCLUDE_DIR"):
    inc.append(os.environ["NATTEN_DLPACK_INCLUDE_DIR"])
print(f"setup.py: libnatten via {how}: include {inc}, lib {libdirs}", file=sys.stderr)

def _header_declares(dirs, name):
    for d in list(dirs) + ["/usr/local/include", "/usr/include"]:
        try:
            with open(os.path.join(d, "natten.h")) as f:
                return name in f.read()
        except OSError:
            continue
    return False


# The tuning/wisdom API arrived after the first release of natten.h: bind it when declared.
macros = []
for fn, macro in (("natten_context_set_tuning", "PYNATTEN_HAVE_TUNING"),
                  ("natten_explain", "PYNATTEN_HAVE_EXPLAIN")):
    found = _header_declares(inc, fn)
    print(f"setup.py: {fn} {'found' if found else 'absent'} in natten.h", file=sys.stderr)
    if found:
        macros.append((macro, "1"))

ext = Extension(
    "natten._C",
    sources=["natten/_C.c"],
    include_dirs=inc,
    library_dirs=libdirs,
    libraries=["natten"],
    define_macros=macros,
    runtime_library_dirs=[os.path.abspath(d) for d in libdirs],
    extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
)

setup(ext_modules=[ext])
