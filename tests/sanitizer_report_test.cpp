// In a sanitizer build (scripts/sanitize's, KBUILD_SANITIZE=address,undefined scripts/test's) the
// sanitizers are on, and a report ends the program that met it with status 86 and the report on
// stderr (core/app/sanitizer_options.cpp), whatever status a test expected of it. Each error is
// made on purpose, in a child process (a death test); each test is compiled in the builds with
// its sanitizer (KBUILD_TEST_ADDRESS, _UNDEFINED, _THREAD, from tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <climits>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

const ::testing::ExitedWithCode kReported(86);

#ifdef KBUILD_TEST_ADDRESS
// Neither the compiler nor UBSan's object-size check sees the block's size (malloc called
// through a volatile pointer) or the index: only ASan can tell the write is out of bounds.
void write_past_the_end(volatile std::size_t index) {
    void* (*volatile allocate)(std::size_t) = std::malloc;
    auto* bytes = static_cast<volatile char*>(allocate(8));
    bytes[index] = 1;
    std::free(const_cast<char*>(bytes));
}

// Memory no pointer reaches any more (the pointer itself overwritten, not left on the stack).
__attribute__((noinline)) void lose_memory() {
    char* volatile bytes = new char[64];
    bytes[0] = 1;
    bytes = nullptr;
}
#endif

#ifdef KBUILD_TEST_UNDEFINED
int add(volatile int a, volatile int b) {
    return a + b;
}
#endif

#ifdef KBUILD_TEST_THREAD
// Two threads write one int with nothing ordering them.
void race() {
    int shared = 0;
    std::thread a([&shared] { shared = 1; });
    std::thread b([&shared] { shared = 2; });
    a.join();
    b.join();
}
#endif

}  // namespace

#ifdef KBUILD_TEST_ADDRESS
TEST(SanitizerReport, AnOutOfBoundsWriteEndsTheProgramWithStatus86) {
    EXPECT_EXIT(write_past_the_end(8), kReported, "heap-buffer-overflow");
}

TEST(SanitizerReport, AMemoryLeakEndsTheProgramWithStatus86) {
    EXPECT_EXIT(
        {
            lose_memory();
            std::exit(0);  // the leak check runs at exit
        },
        kReported, "detected memory leaks");
}
#endif

#ifdef KBUILD_TEST_UNDEFINED
TEST(SanitizerReport, ASignedOverflowEndsTheProgramWithStatus86) {
    EXPECT_EXIT(add(INT_MAX, 1), kReported, "signed integer overflow");
}
#endif

#ifdef KBUILD_TEST_THREAD
TEST(SanitizerReport, ADataRaceEndsTheProgramWithStatus86) {
    EXPECT_EXIT(race(), kReported, "data race");
}
#endif
