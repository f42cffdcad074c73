// kbuild images: the shipped definitions built for real (debootstrap, docker import, docker
// build), kept when unchanged, and a user's own definition from a rootfs tarball.
#include "process.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::vector<std::string> in_cache(std::vector<std::string> args) {
    args.insert(args.begin(), {"--cache-dir", (test::binary_dir() / "test-cache").string()});
    return args;
}

Json listed(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = extra;
    args.insert(args.end(), {"images", "list", "--output", "json"});
    const ProcessResult r = test::run_kbuild(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json::parse(r.out)["images"];
}

const Json* find_image(const Json& images, const std::string& name) {
    for (const auto& image : images)
        if (image["name"] == name) return &image;
    return nullptr;
}

TEST(Images, BuildsTheShippedDefinitionsAndKeepsUnchangedOnes) {
    const ProcessResult built = test::run_kbuild(in_cache({"images", "build"}));
    ASSERT_EQ(built.exit_code, 0) << built.err;
    const Json images = listed();
    for (const auto& [name, gcc] : std::vector<std::pair<std::string, int>>{
             {"debian-bullseye", 10}, {"debian-bookworm", 12}, {"debian-trixie", 14}}) {
        const Json* image = find_image(images, name);
        ASSERT_NE(image, nullptr) << name;
        EXPECT_EQ((*image)["gcc"], gcc);
        EXPECT_EQ((*image)["current"], "yes");
        EXPECT_EQ((*image)["image"], "kbuild/builder-" + name + ":latest");
        // The compiler the definition names is really in the image.
        const ProcessResult cc = run_process({"docker", "run", "--rm", "--network", "none",
                                              (*image)["image"].get<std::string>(),
                                              (*image)["cc"].get<std::string>(), "-dumpversion"});
        ASSERT_EQ(cc.exit_code, 0) << cc.err;
        EXPECT_EQ(std::stoi(cc.out), gcc) << cc.out;
    }

    const ProcessResult again = test::run_kbuild(in_cache({"images", "build"}));
    ASSERT_EQ(again.exit_code, 0) << again.err;
    for (const std::string name : {"debian-bullseye", "debian-bookworm", "debian-trixie"})
        EXPECT_NE(again.err.find(name + ": up to date"), std::string::npos) << again.err;
}

TEST(Images, AUserDefinitionFromARootfsTarball) {
    test::TempDir dir;
    // A tiny root file system: busybox and its applets.
    const fs::path root = dir / "root";
    fs::create_directories(root / "bin");
    fs::copy_file("/bin/busybox", root / "bin/busybox");
    for (const char* applet : {"sh", "echo", "cat", "gcc"}) fs::create_symlink("busybox", root / "bin" / applet);
    const fs::path definition = dir / "defs/tiny";
    fs::create_directories(definition);
    ASSERT_EQ(run_process({"tar", "-C", root.string(), "-czf", (definition / "rootfs.tar.gz").string(), "."}).exit_code, 0);
    test::write_file(definition / "builder.json",
                     R"({"name": "tiny", "family": "test", "gcc": 99, "cc": "gcc",
                         "base": {"rootfs": "rootfs.tar.gz"}})");
    test::write_file(definition / "Dockerfile", "ARG BASE\nFROM ${BASE}\nRUN echo tiny > /tiny\n");

    const std::vector<std::string> defs = {"--builders-dir", (dir / "defs").string()};
    std::vector<std::string> args = defs;
    args.insert(args.end(), {"--cache-dir", (dir / "cache").string(), "images", "build", "tiny"});
    const ProcessResult built = test::run_kbuild(args);
    ASSERT_EQ(built.exit_code, 0) << built.err;
    const Json images = listed(defs);
    const Json* image = find_image(images, "tiny");
    ASSERT_NE(image, nullptr);
    EXPECT_EQ((*image)["gcc"], 99);
    EXPECT_EQ((*image)["current"], "yes");
    EXPECT_EQ(run_process({"docker", "run", "--rm", "kbuild/builder-tiny:latest", "cat", "/tiny"}).out, "tiny\n");

    // A changed definition is no longer current.
    test::write_file(definition / "Dockerfile", "ARG BASE\nFROM ${BASE}\nRUN echo tinier > /tiny\n");
    const Json changed = listed(defs);
    ASSERT_NE(find_image(changed, "tiny"), nullptr);
    EXPECT_EQ((*find_image(changed, "tiny"))["current"], "no (definition changed)");
    run_process({"docker", "rmi", "-f", "kbuild/builder-tiny:latest"});
    run_process({"sh", "-c", "docker image prune -f >/dev/null; "
                             "docker images -q 'kbuild/base-tiny' | xargs -r docker rmi -f"});
}

TEST(Images, AMalformedDefinitionIsNamed) {
    test::TempDir dir;
    test::write_file(dir / "defs/bad/builder.json", R"({"name": "bad", "base": {}})");
    test::write_file(dir / "defs/bad/Dockerfile", "FROM scratch\n");
    const ProcessResult r = test::run_kbuild({"--builders-dir", (dir / "defs").string(), "images", "build", "bad"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find((dir / "defs/bad/builder.json").string() + ": \"gcc\" must be"), std::string::npos) << r.err;
}

}  // namespace
