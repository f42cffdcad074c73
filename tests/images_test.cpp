// kbuild images: the shipped definitions built for real (debootstrap, docker import, docker
// build), kept when unchanged, and a user's own definition from a rootfs tarball.
#include "test_util.h"
#include "util/process.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

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
    // Every gcc major from 9 to 14, each from the Debian suite that ships it.
    for (const auto& [name, gcc] : std::vector<std::pair<std::string, int>>{{"debian-bullseye-gcc9", 9},
                                                                            {"debian-bullseye", 10},
                                                                            {"debian-bookworm-gcc11", 11},
                                                                            {"debian-bookworm", 12},
                                                                            {"debian-trixie-gcc13", 13},
                                                                            {"debian-trixie", 14}}) {
        const Json* image = find_image(images, name);
        ASSERT_NE(image, nullptr) << name;
        EXPECT_EQ((*image)["gcc"], gcc);
        EXPECT_EQ((*image)["current"], "yes");
        EXPECT_EQ((*image)["image"], "kbuild/builder-" + name + ":latest");
        // The compiler the definition names is really in the image.
        const ProcessResult cc =
            run_process({"docker", "run", "--rm", "--network", "none", (*image)["image"].get<std::string>(),
                         (*image)["cc"].get<std::string>(), "-dumpversion"});
        ASSERT_EQ(cc.exit_code, 0) << cc.err;
        EXPECT_EQ(std::stoi(cc.out), gcc) << cc.out;
    }

    // The clang image: LLVM 16's clang and linker are the ones make LLVM=1 finds by name.
    const Json* clang = find_image(images, "debian-bookworm-clang16");
    ASSERT_NE(clang, nullptr);
    EXPECT_EQ((*clang)["clang"], 16);
    EXPECT_EQ((*clang)["gcc"], 0);
    EXPECT_EQ((*clang)["cc"], "clang");
    const ProcessResult tools =
        run_process({"docker", "run", "--rm", "--network", "none", (*clang)["image"].get<std::string>(), "sh", "-c",
                     "clang --version && ld.lld --version && llvm-objcopy --version"});
    ASSERT_EQ(tools.exit_code, 0) << tools.err;
    EXPECT_NE(tools.out.find("clang version 16."), std::string::npos) << tools.out;
    EXPECT_NE(tools.out.find("LLD 16."), std::string::npos) << tools.out;

    const ProcessResult again = test::run_kbuild(in_cache({"images", "build"}));
    ASSERT_EQ(again.exit_code, 0) << again.err;
    for (const std::string name :
         {"debian-bullseye", "debian-bullseye-gcc9", "debian-bookworm", "debian-bookworm-gcc11",
          "debian-bookworm-clang16", "debian-trixie", "debian-trixie-gcc13"})
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
    ASSERT_EQ(run_process({"tar", "-C", root.string(), "-czf", (definition / "rootfs.tar.gz").string(), "."}).exit_code,
              0);
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
    run_process({"sh", "-c",
                 "docker image prune -f >/dev/null; "
                 "docker images -q 'kbuild/base-tiny' | xargs -r docker rmi -f"});
}

// kbuild images build --rootfs: a root file system made here (the gcc 9 image's, exported)
// becomes an image of its compiler; one said to hold another gcc is refused and removed.
TEST(Images, ARootfsTarballOfAUsersCompiler) {
    test::TempDir dir;
    const fs::path tarball = dir / "rootfs.tar";
    const ProcessResult exported = run_process(
        {"sh", "-c",
         "c=$(docker create kbuild/builder-debian-bullseye-gcc9:latest true) && docker export \"$c\" -o \"$0\"; "
         "r=$?; docker rm \"$c\" >/dev/null; exit $r",
         tarball.string()});
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    const std::vector<std::string> cache = {"--cache-dir", (dir / "cache").string()};
    auto images = [&](std::vector<std::string> args) {
        args.insert(args.begin(), cache.begin(), cache.end());
        return test::run_kbuild(args);
    };
    // Its aarch64 cross compiler too (the gcc 9 image has gcc-9-aarch64-linux-gnu).
    const ProcessResult built = images({"images", "build", "--rootfs", tarball.string(), "--name", "kbuild-test-gcc9",
                                        "--gcc", "9", "--cc", "gcc-9", "--cross", "arm64=aarch64-linux-gnu-"});
    ASSERT_EQ(built.exit_code, 0) << built.err;
    const Json listed_images = listed(cache);
    const Json* image = find_image(listed_images, "kbuild-test-gcc9");
    ASSERT_NE(image, nullptr) << listed_images.dump(1);
    EXPECT_EQ((*image)["gcc"], 9);
    EXPECT_EQ((*image)["cross"], Json({{"arm64", "aarch64-linux-gnu-"}}));
    EXPECT_EQ((*image)["current"], "yes");
    // Unchanged, it is kept.
    const ProcessResult again = images({"images", "build", "--rootfs", tarball.string(), "--name", "kbuild-test-gcc9",
                                        "--gcc", "9", "--cc", "gcc-9", "--cross", "arm64=aarch64-linux-gnu-"});
    EXPECT_NE(again.err.find("kbuild-test-gcc9: up to date"), std::string::npos) << again.err;

    const ProcessResult wrong = images(
        {"images", "build", "--rootfs", tarball.string(), "--name", "kbuild-test-gcc8", "--gcc", "8", "--cc", "gcc-9"});
    EXPECT_EQ(wrong.exit_code, 1);
    EXPECT_EQ(test::lines_with(wrong.err,
                               "kbuild-test-gcc8: `gcc-9 -dumpversion` in kbuild/builder-kbuild-test-gcc8:latest "
                               "says 9, not gcc 8"),
              1)
        << wrong.err;
    EXPECT_EQ(run_process({"docker", "images", "-q", "kbuild/builder-kbuild-test-gcc8"}).out, "");
    EXPECT_EQ(run_process({"docker", "images", "-q", "kbuild/base-kbuild-test-gcc8"}).out, "");
    // A cross compiler the root does not have: refused the same way.
    const ProcessResult no_cross =
        images({"images", "build", "--rootfs", tarball.string(), "--name", "kbuild-test-riscv", "--gcc", "9", "--cc",
                "gcc-9", "--cross", "riscv=riscv64-linux-gnu-"});
    EXPECT_EQ(no_cross.exit_code, 1);
    EXPECT_EQ(test::lines_with(no_cross.err,
                               "kbuild-test-riscv: `riscv64-linux-gnu-gcc-9 -dumpversion` does not run "
                               "in kbuild/builder-kbuild-test-riscv:latest"),
              1)
        << no_cross.err;
    EXPECT_EQ(run_process({"docker", "images", "-q", "kbuild/builder-kbuild-test-riscv"}).out, "");

    run_process({"sh", "-c",
                 "docker rmi -f kbuild/builder-kbuild-test-gcc9:latest >/dev/null; "
                 "docker images -q kbuild/base-kbuild-test-gcc9 | xargs -r docker rmi -f >/dev/null"});
}

// The image ids Docker holds with this builder label, tagged or not.
std::vector<std::string> labelled(const std::string& builder) {
    const ProcessResult r =
        run_process({"docker", "images", "-q", "--no-trunc", "--filter", "label=kbuild.builder=" + builder});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> ids;
    std::istringstream lines(r.out);
    for (std::string id; lines >> id;) ids.push_back(id);
    return ids;
}

// --force builds a new image under the same tag: the old one is removed, not left untagged and
// counted as one more builder.
TEST(Images, ForceReplacesTheImageItRebuilds) {
    struct RemoveImages {
        ~RemoveImages() {
            run_process({"sh", "-c",
                         "docker images -q --filter label=kbuild.builder=tinyforce | xargs -r docker rmi -f; "
                         "docker images -q kbuild/base-tinyforce | xargs -r docker rmi -f"});
        }
    } remove_images;
    test::TempDir dir;
    const fs::path root = dir / "root";
    fs::create_directories(root / "bin");
    fs::copy_file("/bin/busybox", root / "bin/busybox");
    fs::create_symlink("busybox", root / "bin/sh");
    const fs::path definition = dir / "defs/tinyforce";
    fs::create_directories(definition);
    ASSERT_EQ(run_process({"tar", "-C", root.string(), "-czf", (definition / "rootfs.tar.gz").string(), "."}).exit_code,
              0);
    test::write_file(definition / "builder.json",
                     R"({"name": "tinyforce", "family": "test", "gcc": 98, "base": {"rootfs": "rootfs.tar.gz"}})");
    test::write_file(definition / "Dockerfile", "ARG BASE\nFROM ${BASE}\nRUN echo tiny > /tiny\n");
    const std::vector<std::string> defs = {"--builders-dir", (dir / "defs").string()};
    std::vector<std::string> args = defs;
    args.insert(args.end(), {"--cache-dir", (dir / "cache").string(), "images", "build", "tinyforce"});
    ProcessResult r = test::run_kbuild(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto first = labelled("tinyforce");
    ASSERT_EQ(first.size(), 1u);
    const size_t builders = listed(defs).size();

    args.push_back("--force");
    r = test::run_kbuild(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto second = labelled("tinyforce");
    ASSERT_EQ(second.size(), 1u) << r.err;
    EXPECT_NE(second[0], first[0]) << "--force rebuilt nothing";
    EXPECT_NE(r.err.find("info: tinyforce: removed the previous kbuild/builder-tinyforce:latest (" +
                         first[0].substr(0, 19) + ")\n"),
              std::string::npos)
        << r.err;
    // Counted once, wherever builders are counted.
    const Json images = listed(defs);
    EXPECT_EQ(images.size(), builders);
    EXPECT_EQ(std::count_if(images.begin(), images.end(), [](const Json& i) { return i["name"] == "tinyforce"; }), 1);
    // The base it replaced went too: one base image left.
    r = run_process({"docker", "images", "-q", "kbuild/base-tinyforce"});
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_EQ(run_process({"docker", "image", "inspect", first[0]}).exit_code, 1);
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
