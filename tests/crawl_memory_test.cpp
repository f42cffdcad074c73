// The guard against a crawl that comes back short (targets/crawl_memory): compared with the
// last crawl that passed, kept in a directory, per query.
#include "targets/crawl_memory.h"

#include "test_util.h"

#include <kbuild/error.hpp>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

Release debian(const std::string& release, const std::string& repository = "debian") {
    Release r;
    r.release = release;
    r.distro = "debian";
    r.arch = "amd64";
    r.packages = {{"linux-headers-" + release, "http://mirror.example/" + repository +
                                                   "/pool/main/l/linux/linux-headers-" + release + "_1_amd64.deb"}};
    return r;
}

// n releases of each flavour: 6.1.0-<i>-<flavour>.
ReleaseList fleet(int n, const std::vector<std::string>& flavours) {
    ReleaseList list;
    for (const auto& flavour : flavours)
        for (int i = 0; i < n; ++i) list.releases.push_back(debian("6.1.0-" + std::to_string(10 + i) + "-" + flavour));
    return list;
}

const Json kQuery = {{"distro", "debian"}, {"mirrors", {"http://mirror.example/debian"}}};

std::string refusal(const ReleaseList& list, const fs::path& dir, ShrinkPolicy policy = {}) {
    try {
        check_crawl_shrink(list, "debian", "amd64", kQuery, dir, policy);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(CrawlMemory, GroupsAreTheFlavourTheTargetAndTheRepository) {
    Release r = debian("6.1.0-53-cloud-amd64", "debian-security");
    r.target = "debian-cloud";
    EXPECT_EQ(release_groups(r), (std::vector<std::string>{"flavour cloud-amd64", "target debian-cloud",
                                                           "repository http://mirror.example/debian-security"}));
    Release ubuntu;
    ubuntu.release = "5.15.0-91-generic";
    ubuntu.packages = {{"x", "http://archive.example/ubuntu/pool/main/l/linux/x.deb"}};
    EXPECT_EQ(release_groups(ubuntu),
              (std::vector<std::string>{"flavour generic", "repository http://archive.example/ubuntu"}));
    Release rpm;
    rpm.release = "5.14.0-284.11.1.el9_2.x86_64";
    rpm.packages = {{"kernel-devel", "http://m.example/9-stream/BaseOS/x86_64/os/Packages/k/kernel-devel.rpm"}};
    EXPECT_EQ(release_groups(rpm),
              (std::vector<std::string>{"flavour x86_64", "repository http://m.example/9-stream/BaseOS/x86_64/os"}));
}

TEST(CrawlMemory, AShortCrawlIsRefusedNamingWhatVanishedAndTheLastGoodOneIsKept) {
    test::TempDir dir;
    const ReleaseList full = fleet(10, {"amd64"});
    EXPECT_EQ(refusal(full, dir.path()), "");  // nothing to compare with: remembered
    ASSERT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
    EXPECT_EQ(refusal(full, dir.path()), "");

    ReleaseList shrunk = full;
    shrunk.releases.resize(7);  // 3 of 10 gone: 30%
    const std::string why = refusal(shrunk, dir.path());
    EXPECT_NE(why.find("debian amd64: the crawl found 7 releases, 10 the last time"), std::string::npos) << why;
    EXPECT_NE(why.find("3 of the 10 releases of the last crawl vanished (30%, more than 25%): 6.1.0-17-amd64, "
                       "6.1.0-18-amd64, 6.1.0-19-amd64"),
              std::string::npos)
        << why;
    EXPECT_NE(why.find("--allow-shrink"), std::string::npos) << why;
    // Refused, it is not remembered: the same short crawl is refused again.
    EXPECT_NE(refusal(shrunk, dir.path()), "");
    // Within the share, or with a higher one, it passes.
    ReleaseList fewer = full;
    fewer.releases.resize(8);
    EXPECT_EQ(refusal(fewer, dir.path()), "");
    ShrinkPolicy lenient;
    lenient.max_share = 0.5;
    EXPECT_EQ(refusal(shrunk, dir.path(), lenient), "");
}

TEST(CrawlMemory, AFlavourOrRepositoryVanishingWholeIsRefusedEvenWhenTheShareIsSmall) {
    test::TempDir dir;
    ReleaseList list = fleet(10, {"amd64", "rt-amd64"});
    list.releases.push_back(debian("6.1.0-10-cloud-amd64"));
    list.releases.push_back(debian("6.1.0-11-cloud-amd64"));
    for (int i = 0; i < 3; ++i)
        list.releases.push_back(debian("6.1.0-" + std::to_string(40 + i) + "-amd64", "debian-security"));
    ASSERT_EQ(refusal(list, dir.path()), "");

    ReleaseList no_cloud = list;
    no_cloud.releases.erase(no_cloud.releases.begin() + 20, no_cloud.releases.begin() + 22);
    const std::string why = refusal(no_cloud, dir.path());
    EXPECT_NE(why.find("the flavour cloud-amd64 vanished (2 releases last time)"), std::string::npos) << why;
    EXPECT_EQ(why.find("of the last crawl vanished"), std::string::npos) << why;  // 2 of 25: within the share

    ReleaseList no_security = list;
    no_security.releases.resize(22);
    EXPECT_NE(refusal(no_security, dir.path())
                  .find("the repository http://mirror.example/debian-security vanished "
                        "(3 releases last time)"),
              std::string::npos);
}

TEST(CrawlMemory, AllowedAShortCrawlIsWarnedAboutAndBecomesTheLastOne) {
    test::TempDir dir;
    ASSERT_EQ(refusal(fleet(10, {"amd64"}), dir.path()), "");
    ShrinkPolicy allow;
    allow.allow = true;
    EXPECT_EQ(refusal(ReleaseList{}, dir.path(), allow), "");
    // The empty crawl is now the last one: a full one after it is growth, not loss.
    EXPECT_EQ(refusal(fleet(10, {"amd64"}), dir.path()), "");
    // And an empty crawl after any release is refused without --allow-shrink.
    EXPECT_NE(refusal(ReleaseList{}, dir.path()).find("10 of the 10 releases"), std::string::npos);
}

TEST(CrawlMemory, EachQueryHasItsOwnMemory) {
    test::TempDir dir;
    ASSERT_EQ(refusal(fleet(10, {"amd64"}), dir.path()), "");
    // Another mirror set is another query: its first crawl compares with nothing.
    EXPECT_NO_THROW(check_crawl_shrink(fleet(2, {"amd64"}), "debian", "amd64", Json{{"mirrors", {"http://other"}}},
                                       dir.path(), {}));
    EXPECT_NO_THROW(check_crawl_shrink(fleet(2, {"amd64"}), "debian", "arm64", kQuery, dir.path(), {}));
}
