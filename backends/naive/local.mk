# The naive reference backend: always built, always last in the registry.
libnatten_la_SOURCES += backends/naive/naive.c
