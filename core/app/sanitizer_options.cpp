// The sanitizers' run-time options, linked into kbuild and every test program of a sanitizer
// build (KBUILD_SANITIZE: scripts/sanitize, scripts/test). ASAN_OPTIONS, UBSAN_OPTIONS and
// TSAN_OPTIONS in the environment still apply over them.
//
// A report exits with status 86, which nothing in kbuild uses: a test that expects kbuild to
// fail (exit 1) cannot take a sanitizer's report for the failure it expected.

#ifdef KBUILD_SANITIZER_OPTIONS
extern "C" {

// Leaks are reports too (the default on Linux, said here as it is meant).
const char* __asan_default_options() {
    return "exitcode=86:detect_leaks=1:check_initialization_order=1:strict_init_order=1";
}

const char* __ubsan_default_options() {
    return "exitcode=86:print_stacktrace=1";
}

// The first race ends the program, with both stacks of a lock-order inversion.
const char* __tsan_default_options() {
    return "exitcode=86:halt_on_error=1:second_deadlock_stack=1";
}

// Third-party false positives only, each with why; never kbuild's own code.
const char* __tsan_default_suppressions() {
    // spdlog's registry is a function-local static of libspdlog.so, which is not instrumented:
    // a thread that finds it made passes the guard's acquiring load unseen, so TSan takes the
    // first log lines of two threads (a test's fetch_all before anything logged) for a race
    // with the registry's construction.
    return "race:spdlog::details::registry::registry\n";
}

}  // extern "C"
#endif
