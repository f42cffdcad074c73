// A plugin author's mistakes in an optional hook are compile errors naming the hook, not hooks
// silently left out of the table: each probe in tests/sdk_probes is built as its own target.
#include "test_util.h"

#include <gtest/gtest.h>

using namespace kbuild;

TEST(SdkHooks, APluginWithOnlyTheHooksItNeedsBuilds) {
    for (const char* probe : {"sdk_probe_plain", "sdk_probe_minimal_deb", "sdk_probe_minimal_rpm"}) {
        const ProcessResult r = test::build_target(probe);
        EXPECT_EQ(r.exit_code, 0) << probe << ":\n" << r.out + r.err;
    }
}

TEST(SdkHooks, AMisspelledHookDoesNotCompileAndSaysWhich) {
    const ProcessResult r = test::build_target("sdk_probe_misspelled");
    EXPECT_NE(r.exit_code, 0) << "descibe built:\n" << r.out + r.err;
    EXPECT_NE((r.out + r.err).find("a member is named one typo away from `describe`"), std::string::npos)
        << r.out + r.err;
}

TEST(SdkHooks, AHookWithAWrongSignatureDoesNotCompileAndSaysTheRightOne) {
    const ProcessResult r = test::build_target("sdk_probe_wrong_signature");
    EXPECT_NE(r.exit_code, 0) << "crawl(CrawlRequest&) built:\n" << r.out + r.err;
    EXPECT_NE((r.out + r.err).find("crawl must be `kbuild::ReleaseList crawl(const kbuild::CrawlRequest&)`"),
              std::string::npos)
        << r.out + r.err;
}
