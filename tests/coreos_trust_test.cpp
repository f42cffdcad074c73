// Flatcar images are trusted by their release's DIGESTS (label unit: 127.0.0.1 only): release
// servers laid out by hand, one release per channel, each image's DIGESTS written as the release
// tools write it and clearsigned (<image>.DIGESTS.asc) by throw-away keys from
// tests/fixtures/deb/make-test-key, crawled and built by the coreos plugin through the kbuild
// binary. The images are not disk images: a target whose image was accepted fails later, reading
// it, and one whose image was refused never gets that far.
//   channel     the release's DIGESTS                      key A configured
//   good        .asc by key A                              accepted, image fetched and checked
//   tampered    .asc by key A, image replaced after it     refused by fetch: sha512 mismatch
//   otherkey    .asc by key B                              refused: unknown key
//   altered     .asc by key A, its text altered            refused: BAD signature
//   plain       DIGESTS, no .asc                           refused: no signature (no key: used)
//   none        no DIGESTS                                 refused: the image cannot be checked
#include "mirror_server.h"
#include "test_util.h"

#include <kbuild/digest.hpp>
#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>
#include <sstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kImage = "flatcar_developer_container.bin.bz2";
const std::string kKernel = "6.1.99-flatcar";

class CoreOSTrust : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir;
        make_key("a");
        make_key("b");
        server_root_ = dir_->path() / "releases";
        make_release("good", "4100.1.0", "a");
        make_release("good2", "4100.7.0", "a");
        make_release("tampered", "4100.2.0", "a");
        test::write_file(release_dir("tampered", "4100.2.0") / kImage, "an image put in place after signing\n");
        make_release("otherkey", "4100.3.0", "b");
        make_release("altered", "4100.6.0", "a");
        const fs::path asc = release_dir("altered", "4100.6.0") / (kImage + ".DIGESTS.asc");
        std::string text = test::read_file(asc);
        const size_t at = text.find("# MD5 HASH");
        ASSERT_NE(at, std::string::npos);
        text.replace(at, 10, "# MD4 HASH");
        test::write_file(asc, text);
        make_release("plain", "4100.4.0", "");
        make_release("none", "4100.5.0", "");
        fs::remove(release_dir("none", "4100.5.0") / (kImage + ".DIGESTS"));
    }

    static void TearDownTestSuite() {
        for (const char* key : {"a", "b"}) run_process({"gpgconf", "--homedir", home(key), "--kill", "gpg-agent"});
        delete dir_;
        dir_ = nullptr;
    }

    static std::string home(const std::string& key) { return (dir_->path() / ("key-" + key)).string(); }

    static void make_key(const std::string& name) { test::make_test_key(home(name), "key " + name); }

    static fs::path release_dir(const std::string& channel, const std::string& version) {
        return server_root_ / channel / "amd64-usr" / version;
    }

    // A release: the kernel config, an "image", its DIGESTS (MD5 then SHA512, as make_digests
    // writes them) and, signed by `key`, its clearsigned copy.
    static void make_release(const std::string& channel, const std::string& version, const std::string& key) {
        const fs::path dir = release_dir(channel, version);
        test::write_file(dir / "flatcar_production_image_kernel_config.txt",
                         "# Linux/x86 6.1.99 Kernel Configuration\nCONFIG_LOCALVERSION=\"-flatcar\"\n");
        test::write_file(dir / "version.txt", "FLATCAR_VERSION=" + version + "\n");
        const fs::path image = dir / kImage;
        test::write_file(image, "not a disk image: Flatcar " + version + "\n");
        const fs::path digests = dir / (kImage + ".DIGESTS");
        test::write_file(digests, "# MD5 HASH\n" + md5_file(image.string()) + "  " + kImage + "\n# SHA512 HASH\n" +
                                      file_digest(image.string(), "sha512") + "  " + kImage + "\n");
        if (key.empty()) return;
        const ProcessResult r =
            run_process({"gpg", "--homedir", home(key), "--batch", "--quiet", "--yes", "--pinentry-mode", "loopback",
                         "--passphrase", "", "--clearsign", "--output", digests.string() + ".asc", digests.string()});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }

    static std::string keyring(const std::string& key) {
        return (dir_->path() / ("key-" + key) / "public.asc").string();
    }

    std::string image_url(const std::string& channel, const std::string& version) const {
        return server_.url() + "/" + channel + "/amd64-usr/" + version + "/" + kImage;
    }

    ProcessResult crawl(const std::string& channels, std::vector<std::string> extra) {
        std::vector<std::string> args = {
            "--cache-dir", cache_.path().string(), "crawl",    "--distro", "flatcar", "--mirror", server_.url(),
            "--option",    "channels=" + channels, "--output", "json"};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::run_kbuild(args);
    }

    // The channels' targets by Flatcar version.
    std::map<std::string, Json> build(const std::string& channels, std::vector<std::string> extra,
                                      const fs::path& out) {
        std::vector<std::string> args = {"--cache-dir",
                                         cache_.path().string(),
                                         "build",
                                         "--distro",
                                         "flatcar",
                                         "--mirror",
                                         server_.url(),
                                         "--option",
                                         "channels=" + channels,
                                         "--builder",
                                         "local",
                                         "--module-src",
                                         (test::source_dir() / "examples/hello").string(),
                                         "--out",
                                         out.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        const ProcessResult r = test::run_kbuild(args);
        EXPECT_NE(r.exit_code, 0) << r.err;
        std::map<std::string, Json> targets;
        if (!fs::exists(out / "index.json")) return targets;
        const Json index = Json::parse(test::read_file(out / "index.json"));
        for (const auto& t : index["targets"]) targets[t["variant"].get<std::string>()] = t;
        return targets;
    }

    // One line naming the file and the cause, and the release left out.
    void expect_refused(const std::string& channel, const std::string& version, const std::string& file,
                        const std::string& cause, std::vector<std::string> extra) {
        const ProcessResult r = crawl(channel, extra);
        EXPECT_NE(r.exit_code, 0) << r.out;
        EXPECT_EQ(test::lines_with(r.err, image_url(channel, version) + file + cause), 1) << r.err;
        EXPECT_TRUE(Json::parse(r.out)["releases"].empty()) << r.out;
    }

    static inline test::TempDir* dir_ = nullptr;
    static inline fs::path server_root_;
    test::TempDir cache_;
    test::MirrorServer server_{server_root_};
};

TEST_F(CoreOSTrust, AnImageListedInADigestsSignedByTheKeyIsFetchedAndChecked) {
    const ProcessResult r = crawl("good", {"--keyring", keyring("a")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json doc = Json::parse(r.out);
    ASSERT_EQ(doc["releases"].size(), 1u) << r.out;
    EXPECT_EQ(doc["releases"][0]["kernelrelease"], kKernel);

    test::TempDir out;
    auto targets = build("good", {"--keyring", keyring("a")}, out.path());
    ASSERT_EQ(targets.size(), 1u);
    const Json& target = targets["4100.1.0"];
    EXPECT_EQ(target["status"], "failed");
    // Fetched and accepted: what fails is reading the (fake) image.
    EXPECT_EQ(target["package_sha256"], Json::array({sha256_file((release_dir("good", "4100.1.0") / kImage).string())}))
        << target.dump(2);
    EXPECT_EQ(target["reason"].get<std::string>().find("sha512"), std::string::npos) << target.dump(2);
    EXPECT_EQ(target["reason"].get<std::string>().find("signature"), std::string::npos) << target.dump(2);
    EXPECT_EQ(target["unverified"], Json::array()) << target.dump(2);
}

TEST_F(CoreOSTrust, AnImageReplacedAfterItsDigestsWasSignedIsRefusedByFetch) {
    test::TempDir out;
    auto targets = build("tampered", {"--keyring", keyring("a")}, out.path());
    ASSERT_EQ(targets.size(), 1u);
    const std::string reason = targets["4100.2.0"]["reason"].get<std::string>();
    EXPECT_NE(reason.find(image_url("tampered", "4100.2.0") + ": sha512 mismatch"), std::string::npos) << reason;
    EXPECT_TRUE(targets["4100.2.0"]["package_sha256"].empty()) << targets["4100.2.0"].dump(2);
}

TEST_F(CoreOSTrust, ADigestsSignedBadlyOrNotAtAllIsRefusedInOneLine) {
    const std::vector<std::string> key_a = {"--keyring", keyring("a")};
    expect_refused("otherkey", "4100.3.0", ".DIGESTS.asc", ": signature by unknown key 0x", key_a);
    expect_refused("altered", "4100.6.0", ".DIGESTS.asc", ": BAD signature by key 0x", key_a);
    expect_refused("plain", "4100.4.0", ".DIGESTS", ": no signature", key_a);
    expect_refused("none", "4100.5.0", ".DIGESTS", ": HTTP 404", key_a);
    expect_refused("none", "4100.5.0", ".DIGESTS", ": HTTP 404", {});
    const ProcessResult r = crawl("none", {});
    EXPECT_NE(r.err.find("(no DIGESTS: the image cannot be checked)"), std::string::npos) << r.err;
}

// With no key configured for flatcar the DIGESTS is used unchecked (its sha512 still checks the
// download), and each target's record names its own release's DIGESTS, not the others'.
TEST_F(CoreOSTrust, WithNoKeyEachTargetRecordsItsOwnUncheckedDigests) {
    test::TempDir out;
    auto targets = build("good,plain", {}, out.path());
    ASSERT_EQ(targets.size(), 2u);
    EXPECT_EQ(targets["4100.1.0"]["unverified"],
              Json::array({image_url("good", "4100.1.0") + ".DIGESTS.asc: no key configured for flatcar"}));
    EXPECT_EQ(targets["4100.4.0"]["unverified"],
              Json::array({image_url("plain", "4100.4.0") + ".DIGESTS: no key configured for flatcar"}));
    EXPECT_FALSE(targets["4100.4.0"]["package_sha256"].empty()) << targets["4100.4.0"].dump(2);

    // The DIGESTS found are remembered, and checked again on the next crawl: now under a key.
    const ProcessResult r = crawl("good,plain", {"--keyring", keyring("a")});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(test::lines_with(r.err, image_url("plain", "4100.4.0") + ".DIGESTS: no signature"), 1) << r.err;
    const Json doc = Json::parse(r.out);
    ASSERT_EQ(doc["releases"].size(), 1u) << r.out;
    EXPECT_EQ(doc["releases"][0]["variant"], "4100.1.0");
}

// An image by URL alone (--from-list) is listed without anything fetched, and checked against
// the DIGESTS beside it before anything is read out of it.
TEST_F(CoreOSTrust, AnImageByUrlIsCheckedByItsDigestsBeforeItIsRead) {
    test::TempDir dir;
    test::write_file(dir / "list", image_url("otherkey", "4100.3.0") + "\n" + image_url("tampered", "4100.2.0") + "\n" +
                                       image_url("good2", "4100.7.0") + "\n");
    const ProcessResult r =
        test::run_kbuild({"--cache-dir", cache_.path().string(), "build", "--distro", "flatcar", "--from-list",
                          (dir / "list").string(), "--keyring", keyring("a"), "--builder", "local", "--module-src",
                          (test::source_dir() / "examples/hello").string(), "--out", (dir / "out").string()});
    EXPECT_NE(r.exit_code, 0);
    std::map<std::string, std::string> reasons;
    const Json index = Json::parse(test::read_file(dir / "out/index.json"));
    for (const auto& t : index["targets"]) reasons[t["variant"].get<std::string>()] = t["reason"].get<std::string>();
    ASSERT_EQ(reasons.size(), 3u) << index.dump(2);
    EXPECT_NE(reasons["4100.3.0"].find(image_url("otherkey", "4100.3.0") + ".DIGESTS.asc: signature by unknown key 0x"),
              std::string::npos)
        << reasons["4100.3.0"];
    EXPECT_NE(reasons["4100.2.0"].find(image_url("tampered", "4100.2.0") + ": sha512 mismatch with its DIGESTS"),
              std::string::npos)
        << reasons["4100.2.0"];
    EXPECT_EQ(reasons["4100.7.0"].find("sha512"), std::string::npos) << reasons["4100.7.0"];
    EXPECT_EQ(reasons["4100.7.0"].find("signature"), std::string::npos) << reasons["4100.7.0"];
    EXPECT_NE(reasons["4100.7.0"], "");
}

}  // namespace
