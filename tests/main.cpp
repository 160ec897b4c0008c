// tests/main.cpp — Catch2 v2 entry point (the one translation unit that defines main).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
