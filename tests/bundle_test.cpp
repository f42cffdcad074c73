// Kernel bundles without the network: a small tree laid out as Debian lays its headers
// (absolute symlinks, a Makefile including the common tree by absolute path, every
// architecture's arch/) written as a bundle; what a reader of the bundle finds in it.
#include "output/bundle_writer.h"
#include "test_util.h"
#include "unpack/extract.h"

#include <kbuild/digest.hpp>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kCommon = "usr/src/linux-headers-9.8.7-1-common";
const std::string kFlavour = "usr/src/linux-headers-9.8.7-1-amd64";

// The tree as packages unpack it under `root`.
void make_tree(const fs::path& root) {
    // The common Makefile says where make found it: the include must reach it wherever the
    // bundle is extracted.
    test::write_file(root / kCommon / "Makefile",
                     "all:\n\t@echo common=$(notdir $(realpath $(dir $(lastword $(MAKEFILE_LIST)))))\n");
    test::write_file(root / kCommon / "arch/Kconfig", "# every architecture's\n");
    test::write_file(root / kCommon / "arch/x86/Makefile", "# x86\n");
    test::write_file(root / kCommon / "arch/arm64/Makefile", "# arm64\n");
    test::write_file(root / kCommon / "arch/notanarch/Makefile", "# kept: not an architecture\n");
    test::write_file(root / kCommon / "include/linux/module.h", "/* module.h */\n");
    test::write_file(root / kFlavour / "Makefile", "include /" + kCommon + "/Makefile\n");
    test::write_file(root / kFlavour / ".config", "# Linux/x86 9.8.7 Kernel Configuration\nCONFIG_X86=y\n");
    test::write_file(root / kFlavour / "include/config/kernel.release", "9.8.7-1-amd64\n");
    fs::create_directories(root / kFlavour / "arch");
    fs::create_symlink("../../linux-headers-9.8.7-1-common/arch/x86", root / kFlavour / "arch/x86");
    fs::create_symlink("../../linux-headers-9.8.7-1-common/arch/arm64", root / kFlavour / "arch/arm64");
    test::write_file(root / "usr/lib/linux-kbuild-9.8/scripts/basic/fixdep", "#!/bin/sh\n");
    fs::create_symlink("../../lib/linux-kbuild-9.8/scripts", root / kCommon / "scripts");
    fs::create_directories(root / "lib/modules/9.8.7-1-amd64");
    fs::create_symlink("/" + kFlavour, root / "lib/modules/9.8.7-1-amd64/build");
    fs::create_symlink("/etc/hostname", root / kFlavour / "outside");
}

Release release() {
    Release r;
    r.release = "9.8.7-1-amd64";
    r.kernelversion = "1";
    r.distro = "debian";
    r.arch = "amd64";
    return r;
}

// A .tgz made by tar from files (path -> content) in a scratch directory.
fs::path tar_bundle(const fs::path& dir, const std::string& name,
                    const std::vector<std::pair<std::string, std::string>>& files) {
    const fs::path scratch = dir / (name + ".d");
    std::vector<std::string> argv{"tar", "-czf", (dir / name).string(), "-C", scratch.string()};
    for (const auto& [path, content] : files) {
        test::write_file(scratch / path, content);
        argv.push_back(path);
    }
    EXPECT_EQ(run_process(argv).exit_code, 0);
    return dir / name;
}

TEST(Bundle, MetaFilesSayWhereToBuildAndWhatKernel) {
    test::TempDir dir;
    make_tree(dir / "root");
    const BundleStats stats = write_bundle(dir / "root", dir / "root" / kFlavour, release(), "c0ffee", dir / "out");
    EXPECT_EQ(stats.file, dir / "out/bundle-9.8.7-1-amd64.tgz");
    EXPECT_TRUE(fs::is_regular_file(stats.file));
    EXPECT_EQ(stats.bytes, static_cast<std::int64_t>(fs::file_size(stats.file)));

    const BundleMeta meta = read_bundle_meta(stats.file);
    EXPECT_EQ(meta.build_dir, "./" + kFlavour);
    EXPECT_EQ(meta.checksum, "c0ffee");
    EXPECT_EQ(meta.distro, "debian");
    EXPECT_EQ(meta.uname, "9.8.7-1-amd64");
    EXPECT_EQ(meta.version, "9");
    EXPECT_EQ(meta.major, "8");
    EXPECT_EQ(meta.minor, "7");
    EXPECT_EQ(meta.arch, "amd64");
    EXPECT_EQ(meta.kernelversion, "1");
    EXPECT_EQ(meta.variant, "");

    // Read as any consumer does: one value per file at the root.
    const fs::path x = dir / "x";
    extract_archive(stats.file, x);
    EXPECT_EQ(test::read_file(x / "BUNDLE_UNAME"), "9.8.7-1-amd64\n");
    EXPECT_EQ(test::read_file(x / "BUNDLE_BUILD_DIR"), "./" + kFlavour + "\n");
    EXPECT_FALSE(fs::exists(x / "BUNDLE_VARIANT"));
}

TEST(Bundle, BuildsWhereverItIsExtracted) {
    test::TempDir dir;
    make_tree(dir / "root");
    const BundleStats stats = write_bundle(dir / "root", dir / "root" / kFlavour, release(), "c0ffee", dir / "out");
    const fs::path x = dir / "somewhere/else";
    extract_archive(stats.file, x);

    // The absolute include now reaches the common tree beside it.
    const ProcessResult make = run_process({"make", "-s", "-C", (x / kFlavour).string()});
    EXPECT_EQ(make.exit_code, 0) << make.err;
    EXPECT_EQ(make.out, "common=linux-headers-9.8.7-1-common\n");
    // Absolute links inside the tree are relative now; one leading out of it is left alone.
    EXPECT_EQ(fs::read_symlink(x / "lib/modules/9.8.7-1-amd64/build"), "../../../" + kFlavour);
    EXPECT_TRUE(fs::is_regular_file(x / "lib/modules/9.8.7-1-amd64/build/.config"));
    EXPECT_EQ(fs::read_symlink(x / kFlavour / "outside"), "/etc/hostname");
    EXPECT_TRUE(fs::is_regular_file(x / kCommon / "scripts/basic/fixdep"));
}

TEST(Bundle, OtherArchitecturesAreLeftOut) {
    test::TempDir dir;
    make_tree(dir / "root");
    const BundleStats stats = write_bundle(dir / "root", dir / "root" / kFlavour, release(), "c0ffee", dir / "out");
    EXPECT_EQ(stats.pruned, 2);  // the common arm64 tree and the flavour's link to it
    const fs::path x = dir / "x";
    extract_archive(stats.file, x);
    EXPECT_TRUE(fs::is_regular_file(x / kCommon / "arch/x86/Makefile"));
    EXPECT_TRUE(fs::is_regular_file(x / kFlavour / "arch/x86/Makefile"));
    EXPECT_TRUE(fs::is_regular_file(x / kCommon / "arch/Kconfig"));
    EXPECT_TRUE(fs::is_regular_file(x / kCommon / "arch/notanarch/Makefile"));
    EXPECT_FALSE(fs::exists(fs::symlink_status(x / kCommon / "arch/arm64")));
    EXPECT_FALSE(fs::exists(fs::symlink_status(x / kFlavour / "arch/arm64")));
}

TEST(Bundle, TheSameTreeGivesTheSameBytes) {
    test::TempDir dir;
    make_tree(dir / "root");
    Release r = release();
    r.variant = "3510.2.0";
    const auto first = write_bundle(dir / "root", dir / "root" / kFlavour, r, "c0ffee", dir / "a");
    const auto second = write_bundle(dir / "root", dir / "root" / kFlavour, r, "c0ffee", dir / "b");
    EXPECT_EQ(first.file.filename(), "bundle-9.8.7-1-amd64~3510.2.0.tgz");
    EXPECT_EQ(sha256_file(first.file.string()), sha256_file(second.file.string()));
    EXPECT_EQ(read_bundle_meta(first.file).variant, "3510.2.0");
    // Nothing but the bundle is left in the output directory.
    EXPECT_EQ(std::distance(fs::directory_iterator(dir / "a"), fs::directory_iterator()), 1);
}

TEST(Bundle, AKernelDirOutsideTheTreeIsRefused) {
    test::TempDir dir;
    make_tree(dir / "root");
    EXPECT_THROW(write_bundle(dir / "root", dir / "elsewhere", release(), "c0ffee", dir / "out"), Error);
    EXPECT_FALSE(fs::exists(dir / "out/bundle-9.8.7-1-amd64.tgz"));
}

TEST(Bundle, BadMetaIsNamed) {
    test::TempDir dir;
    const auto message = [](const fs::path& bundle) {
        try {
            read_bundle_meta(bundle);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    const fs::path no_uname =
        tar_bundle(dir.path(), "no-uname.tgz", {{"BUNDLE_BUILD_DIR", "./build\n"}, {"BUNDLE_DISTRO", "coreos\n"}});
    EXPECT_EQ(message(no_uname), no_uname.string() + ": not a kernel bundle: no BUNDLE_UNAME");
    const fs::path escaping = tar_bundle(
        dir.path(), "escaping.tgz",
        {{"BUNDLE_BUILD_DIR", "../../etc\n"}, {"BUNDLE_DISTRO", "coreos\n"}, {"BUNDLE_UNAME", "4.12.10-coreos\n"}});
    EXPECT_EQ(message(escaping), escaping.string() + ": BUNDLE_BUILD_DIR ../../etc leads out of the bundle");
    const fs::path not_archive = dir / "notes.tgz";
    test::write_file(not_archive, "just text\n");
    EXPECT_EQ(message(not_archive).rfind(not_archive.string() + ": not a kernel bundle: ", 0), 0u)
        << message(not_archive);

    // A kernel-packer bundle of another origin: meta files at the end, no kbuild additions.
    const fs::path foreign = tar_bundle(dir.path(), "foreign.tgz",
                                        {{"build/Makefile", "all:\n"},
                                         {"BUNDLE_BUILD_DIR", "./build\n"},
                                         {"BUNDLE_DISTRO", "coreos\n"},
                                         {"BUNDLE_UNAME", "4.12.10-coreos\n"},
                                         {"BUNDLE_VERSION", "4\n"},
                                         {"BUNDLE_MAJOR", "12\n"},
                                         {"BUNDLE_MINOR", "10\n"}});
    const BundleMeta meta = read_bundle_meta(foreign);
    EXPECT_EQ(meta.uname, "4.12.10-coreos");
    EXPECT_EQ(meta.build_dir, "./build");
    EXPECT_EQ(meta.major, "12");
    EXPECT_EQ(meta.arch, "");
}

// kbuild build --from-bundle over bundles that cannot be built: each named, nothing loaded or
// fetched, the exit status says so.
TEST(Bundle, BuildFromBadBundlesNamesEach) {
    test::TempDir dir;
    // Meta files, a tree, and an entry that climbs out, as a hostile bundle would have it.
    const fs::path scratch = dir / "evil.d", evil = dir / "evil.tgz";
    test::write_file(scratch / "BUNDLE_BUILD_DIR", "./build\n");
    test::write_file(scratch / "BUNDLE_DISTRO", "debian\n");
    test::write_file(scratch / "BUNDLE_UNAME", "6.1.0-99-amd64\n");
    test::write_file(scratch / "build/Makefile", "all:\n");
    test::write_file(scratch / "payload", "owned\n");
    ASSERT_EQ(
        run_process({"tar", "-czPf", evil.string(), "--transform", "s,^payload$,../../escaped,", "-C", scratch.string(),
                     "BUNDLE_BUILD_DIR", "BUNDLE_DISTRO", "BUNDLE_UNAME", "build/Makefile", "payload"})
            .exit_code,
        0);
    const fs::path text = dir / "notes.tgz";
    test::write_file(text, "just text\n");

    const ProcessResult r = test::run_kbuild(
        {"--plugin-dir", (dir / "no-plugins").string(), "--cache-dir", (dir / "cache").string(), "build", "--builder",
         "local", "--from-bundle", evil.string(), "--from-bundle", text.string(), "--module-src",
         (test::source_dir() / "examples/hello").string(), "--out", (dir / "out").string()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(text.string() + ": not a kernel bundle: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("../../escaped"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "escaped"));
    EXPECT_FALSE(fs::exists(dir / "cache/escaped"));
    EXPECT_FALSE(fs::exists(dir / "cache/downloads"));
    const Json index = Json::parse(test::read_file(dir / "out/index.json"));
    ASSERT_EQ(index["targets"].size(), 1u);
    EXPECT_EQ(index["targets"][0]["status"], "failed");
    EXPECT_EQ(index["targets"][0]["distro"], "debian");
    EXPECT_EQ(index["targets"][0]["kernelrelease"], "6.1.0-99-amd64");
    // A bundle carries no signature: its record keeps what it was, by its sha256.
    EXPECT_EQ(index["targets"][0]["packages"], Json::array({evil.string()}));
    EXPECT_EQ(index["targets"][0]["package_sha256"], Json::array({sha256_file(evil.string())}));

    const ProcessResult mixed = test::run_kbuild({"build", "--distro", "debian", "--from-bundle", evil.string(),
                                                  "--module-src", (test::source_dir() / "examples/hello").string()});
    EXPECT_EQ(mixed.exit_code, 2);
    EXPECT_NE(mixed.err.find("--from-bundle builds from the bundles alone"), std::string::npos) << mixed.err;
    const ProcessResult neither =
        test::run_kbuild({"build", "--module-src", (test::source_dir() / "examples/hello").string()});
    EXPECT_EQ(neither.exit_code, 2);
    EXPECT_NE(neither.err.find("--distro is required (or --from-bundle FILE...)"), std::string::npos) << neither.err;
}

}  // namespace
