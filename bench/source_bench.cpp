// A kernel shipped as source: kbuild's whole path (unpack the tarball, prepare the tree in the
// builder image of the config's gcc, build a module) against doing it by hand in the same image
// (tar -x, make olddefconfig, make modules_prepare, make M=); then a second module on the
// prepared tree against make M= alone.
// Usage: source_bench <kbuild> <module-src> <linux-VERSION.tar.xz> <config> (the tarball's one top
// directory holds the tree, whatever its name: Debian's linux-source-6.1/ will do)
#include "bench_timing.h"

#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace kbuild;
using bench::best_of;
using bench::seconds_of;

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s <kbuild> <module-src> <linux-VERSION.tar.xz> <config>\n", argv[0]);
        return 2;
    }
    const std::string kbuild = argv[1];
    const fs::path module = fs::absolute(argv[2]), tarball = fs::absolute(argv[3]), config = fs::absolute(argv[4]);
    std::smatch match;
    const std::string name = tarball.filename().string();
    if (!std::regex_match(name, match, std::regex(R"(linux-(\d+\.\d+(\.\d+)?)\.tar\.\w+)"))) {
        std::fprintf(stderr, "%s: not linux-VERSION.tar.*\n", name.c_str());
        return 2;
    }
    const std::string version = match[1].str();
    const fs::path work = fs::temp_directory_path() / "kbuild-source-bench";
    fs::remove_all(work);
    fs::create_directories(work);
    const std::string image = "kbuild/builder-debian-bookworm:latest";
    const std::string jobs = "-j" + std::to_string(std::max(1u, std::thread::hardware_concurrency()));
    const auto copy_module = [&](const fs::path& to) {
        fs::remove_all(to);
        fs::copy(module, to, fs::copy_options::recursive);
        fs::permissions(to, fs::perms::all);
    };

    // kbuild, cold: nothing unpacked or prepared in its cache.
    const auto kbuild_build = [&](const fs::path& src, const std::string& out) {
        return std::vector<std::string>{kbuild,
                                        "--quiet",
                                        "--cache-dir",
                                        (work / "cache").string(),
                                        "build",
                                        "--distro",
                                        "vanilla",
                                        "--option",
                                        "releases=" + version,
                                        "--kernel-config",
                                        config.string(),
                                        "--builder",
                                        "docker",
                                        "--module-src",
                                        src.string(),
                                        "--out",
                                        (work / out).string(),
                                        "--force",
                                        tarball.string()};
    };
    copy_module(work / "first");
    const double kbuild_first = seconds_of(kbuild_build(work / "first", "out1"));
    copy_module(work / "second");
    const double kbuild_second = best_of(3, kbuild_build(work / "second", "out2"));

    // By hand, in the same image: the source unpacked, the tree prepared, the module built.
    const fs::path src = work / "manual-src", out = work / "manual-out";
    const auto by_hand = [&]() {
        fs::remove_all(src);
        fs::remove_all(out);
        fs::create_directories(src);
        fs::create_directories(out);
        fs::permissions(out, fs::perms::all);
        fs::copy_file(config, out / ".config");
        fs::permissions(out / ".config", fs::perms::all);
        return std::vector<std::string>{
            "sh",
            "-c",
            "tar -xf \"$1\" -C \"$2\" --strip-components=1 && docker run --rm --network none -v "
            "\"$2\":/kernel-source:ro "
            "-v \"$3\":/kernel \"$5\" sh -c 'make -C /kernel-source O=/kernel CC=gcc-12 HOSTCC=gcc-12 "
            "LOCALVERSION= olddefconfig >/dev/null && make -C /kernel-source O=/kernel CC=gcc-12 HOSTCC=gcc-12 "
            "LOCALVERSION= $6 modules_prepare >/dev/null' && docker run --rm --network none "
            "-v \"$2\":/kernel-source:ro -v \"$3\":/kernel:ro -v \"$7\":/build \"$5\" "
            "make -C /kernel M=/build CC=gcc-12 HOSTCC=gcc-12 KBUILD_MODPOST_WARN=1 $6 modules >/dev/null",
            "sh",
            tarball.string(),
            src.string(),
            out.string(),
            version,
            image,
            jobs,
            (work / "manual-module").string()};
    };
    copy_module(work / "manual-module");
    const double manual_first = seconds_of(by_hand());
    const std::vector<std::string> module_alone = {
        "sh",
        "-c",
        "rm -rf \"$4\"/*.o \"$4\"/*.ko && docker run --rm --network none -v \"$1\":/kernel-source:ro "
        "-v \"$2\":/kernel:ro -v \"$4\":/build \"$3\" make -C /kernel M=/build CC=gcc-12 HOSTCC=gcc-12 "
        "KBUILD_MODPOST_WARN=1 $5 modules >/dev/null",
        "sh",
        src.string(),
        out.string(),
        image,
        (work / "manual-module").string(),
        jobs};
    const double manual_second = best_of(3, module_alone);

    std::printf("prepare + first module: kbuild %.1f s, by hand %.1f s, ratio %.2f (target <= 1.1)\n", kbuild_first,
                manual_first, kbuild_first / manual_first);
    std::printf("second module on the prepared tree: kbuild %.2f s, make M= %.2f s, ratio %.2f (target <= 1.15)\n",
                kbuild_second, manual_second, kbuild_second / manual_second);
    fs::remove_all(work);
    return 0;
}
