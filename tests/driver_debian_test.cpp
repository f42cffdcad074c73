// A driver in the shape of Falco's (tests/fixtures/drivers/probedriver: a Kbuild directory
// written by CMake, probe modules of one name built first, one failing by design, a module of
// two files) built for the newest real bookworm kernel in a container (labels docker, network),
// and signed with a throw-away key as the kernel's sign-file would.
#include "test_util.h"

#include <kbuild/digest.hpp>
#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <fstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kSuites = "suites=bookworm,bookworm-updates,bookworm-security";

std::vector<std::string> in_cache(std::vector<std::string> args) {
    args.insert(args.begin(), {"--cache-dir", (test::binary_dir() / "test-cache").string()});
    return args;
}

// The driver's configure step, as its README has a user run it: the Kbuild directory.
fs::path configured_driver(const fs::path& dir) {
    const ProcessResult r = run_process({test::cmake_binary().string(), "-S",
                                         (test::source_dir() / "tests/fixtures/drivers/probedriver").string(), "-B",
                                         (dir / "driver-build").string()});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return dir / "driver-build/src";
}

std::vector<std::string> build_args(const fs::path& src, const fs::path& out) {
    return in_cache({"build", "--distro", "debian", "--option", kSuites, "--kernel", "^6\\.1\\.0-[0-9]+-amd64$",
                     "--latest", "1", "--builder", "docker", "--module-src", src.string(), "--out", out.string()});
}

std::vector<std::string> files_named(const fs::path& dir, const std::string& extension) {
    std::vector<std::string> files;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (entry.path().extension() == extension) files.push_back(fs::relative(entry.path(), dir).string());
    return files;
}

// A throw-away signing key and its certificate (DER, as the kernel's signing_key.x509).
std::vector<std::string> signing_args(const fs::path& dir) {
    const ProcessResult key =
        run_process({"openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-batch",
                     "-subj", "/CN=kbuild driver test key", "-keyout", (dir / "signing_key.pem").string(), "-outform",
                     "DER", "-out", (dir / "signing_key.x509").string()});
    EXPECT_EQ(key.exit_code, 0) << key.err;
    return {"--sign-key", (dir / "signing_key.pem").string(), "--sign-cert", (dir / "signing_key.x509").string()};
}

std::string modinfo_field(const fs::path& ko, const std::string& field) {
    const ProcessResult r = run_process({"modinfo", "-F", field, ko.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
}

Json only_target(const fs::path& out) {
    const Json index = Json::parse(test::read_file(out / "index.json"));
    EXPECT_EQ(index["targets"].size(), 1u);
    return index["targets"][0];
}

}  // namespace

TEST(DriverDebian, ProbingDriverIsOneSignedArtifactSkippedOnTheSecondRun) {
    test::TempDir dir;
    const fs::path src = configured_driver(dir.path());
    const fs::path out = dir / "out";
    std::vector<std::string> args = build_args(src, out);
    const std::vector<std::string> sign = signing_args(dir.path());
    args.insert(args.end(), sign.begin(), sign.end());
    const ProcessResult r = test::run_kbuild(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;

    const Json t = only_target(out);
    ASSERT_EQ(t["status"], "built") << t.dump(2);
    EXPECT_EQ(t["module"], "probedrv");
    const std::string release = t["kernelrelease"];
    ASSERT_EQ(t["artifacts"].size(), 1u) << t.dump(2);
    const std::string artifact = t["artifacts"][0]["path"];
    EXPECT_EQ(artifact, "probedrv-1.2.3-x86_64-" + release + "-" + t["config_md5"].get<std::string>() + ".ko");
    EXPECT_EQ(files_named(out, ".ko"), std::vector<std::string>{artifact});  // no probe's testmod.ko
    EXPECT_EQ(sha256_file((out / artifact).string()), t["artifacts"][0]["sha256"]);
    const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", (out / artifact).string()});
    EXPECT_EQ(modinfo.out.rfind(release + " ", 0), 0u) << modinfo.out;
    // Signed with the hash Debian's config names; index.json and modinfo name the same signer.
    const Json signature = t["artifacts"][0]["signature"];
    EXPECT_EQ(signature["signer"], "kbuild driver test key") << t.dump(2);
    EXPECT_EQ(signature["hash"], "sha256") << t.dump(2);
    EXPECT_EQ(modinfo_field(out / artifact, "signer"), "kbuild driver test key");
    EXPECT_EQ(modinfo_field(out / artifact, "sig_key"), signature["key_id"]);
    EXPECT_EQ(modinfo_field(out / artifact, "sig_hashalgo"), "sha256");
    EXPECT_EQ(t["log"], "logs/debian_amd64_" + release + "_probedrv.log");
    // The probes ran against this kernel's tree (main.c refuses to build otherwise), and their
    // verdicts are in the log.
    const std::string log = test::read_file(out / t["log"].get<std::string>());
    EXPECT_NE(log.find("[probe] HAS_PROC_OPS: yes"), std::string::npos) << log;
    EXPECT_NE(log.find("[probe] HAS_ANCIENT_API: no:"), std::string::npos) << log;
    EXPECT_NE(r.err.find("built " + artifact), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("testmod"), std::string::npos) << r.err;

    const ProcessResult again = test::run_kbuild(args);
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(only_target(out)["status"], "skipped");
    EXPECT_EQ(only_target(out)["artifacts"][0]["signature"], signature);
}

TEST(DriverDebian, ACompileErrorInTheDriverIsReportedByItsOwnLine) {
    test::TempDir dir;
    const fs::path src = configured_driver(dir.path());
    std::ofstream(src / "main.c", std::ios::app) << "int kbuild_planted_error = kbuild_planted_undeclared;\n";
    const std::string main_c = test::read_file(src / "main.c");
    const auto line = std::count(main_c.begin(), main_c.end(), '\n');
    const fs::path out = dir / "out";
    const ProcessResult r = test::run_kbuild(build_args(src, out));
    EXPECT_EQ(r.exit_code, 1);
    const Json t = only_target(out);
    EXPECT_EQ(t["status"], "failed");
    const std::string reason = t["reason"];
    const std::string expected_start = "make exited with 2: /build/main.c:" + std::to_string(line) + ":";
    EXPECT_EQ(reason.substr(0, expected_start.size()), expected_start) << reason;
    EXPECT_NE(reason.find(": error: 'kbuild_planted_undeclared' undeclared here (not in a function)"),
              std::string::npos)
        << reason;
    EXPECT_EQ(reason.substr(reason.size() - 1), ")");
    EXPECT_NE(reason.find(" (log: " + (out / t["log"].get<std::string>()).string() + ")"), std::string::npos) << reason;
    EXPECT_EQ(reason.find("HAS_ANCIENT_API"), std::string::npos) << reason;
    EXPECT_NE(r.err.find(expected_start), std::string::npos) << r.err;
}
