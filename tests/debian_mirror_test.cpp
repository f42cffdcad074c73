// The Debian plugin and the build pipeline against the real Debian mirror apt uses (label
// network): crawl checked against an independent reading of the same indexes, real module
// builds, failures recorded, and an interrupted download recovered.
#include "fetch/apt_sources.h"
#include "mirror_server.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <unistd.h>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const char* const kBookworm = "suites=bookworm,bookworm-updates,bookworm-security";
const char* const kBullseye = "suites=bullseye,bullseye-updates,bullseye-security";

// Package and tree caches shared by every test here and kept between runs.
std::string cache_dir() {
    return (test::binary_dir() / "test-cache").string();
}

std::vector<std::string> with_cache(std::vector<std::string> args) {
    args.insert(args.begin(), {"--cache-dir", cache_dir()});
    return args;
}

Json index_of(const fs::path& out) {
    return Json::parse(test::read_file(out / "index.json"));
}

const Json& target_of(const Json& index, const std::string& release) {
    for (const auto& t : index["targets"])
        if (t["kernelrelease"] == release) return t;
    throw Error("no target " + release + " in index.json");
}

// Returns a copy: a reference into a temporary index would dangle.
Json target_in(const fs::path& out, const std::string& release) {
    return target_of(index_of(out), release);
}

// The newest release matching a pattern, as kbuild's own crawl lists them.
std::string newest(const std::string& suites, const std::string& pattern) {
    const ProcessResult r = test::run_kbuild(with_cache(
        {"crawl", "--distro", "debian", "--option", suites, "--kernel", pattern, "--latest", "1", "--output", "json"}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const Json doc = Json::parse(r.out);
    if (doc["releases"].empty()) throw Error("no release matches " + pattern);
    return doc["releases"][0]["kernelrelease"];
}

// The real mirror's InRelease files are checked with debian-archive-keyring: each suite is
// signed by a key that keyring holds, and another keyring refuses them all.
TEST(DebianMirror, EverySuiteIsVerifiedWithDebiansArchiveKeyring) {
    const ProcessResult crawl =
        test::run_kbuild(with_cache({"--verbose", "crawl", "--distro", "debian", "--option", kBookworm}));
    ASSERT_EQ(crawl.exit_code, 0) << crawl.err;
    const ProcessResult keys =
        run_process({"gpg", "--no-default-keyring", "--keyring", "/usr/share/keyrings/debian-archive-keyring.gpg",
                     "--with-colons", "--fingerprint", "--list-keys"});
    ASSERT_EQ(keys.exit_code, 0) << keys.err;
    int signed_suites = 0;
    std::istringstream lines(crawl.err);
    for (std::string line; std::getline(lines, line);) {
        const std::size_t at = line.find("/InRelease: signed by ");
        if (at == std::string::npos) continue;
        const std::string fingerprint = line.substr(at + std::string("/InRelease: signed by ").size());
        EXPECT_EQ(fingerprint.size(), 40u) << line;
        EXPECT_NE(keys.out.find("fpr:::::::::" + fingerprint + ":"), std::string::npos) << fingerprint;
        ++signed_suites;
    }
    EXPECT_EQ(signed_suites, 3) << crawl.err;  // bookworm, -updates, -security

    test::TempDir other;
    test::make_test_key(other / "key", "not debian");
    const ProcessResult refused =
        test::run_kbuild(with_cache({"crawl", "--distro", "debian", "--option", "suites=bookworm", "--keyring",
                                     (other / "key/public.gpg").string()}));
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find("/dists/bookworm/InRelease: signature by unknown key 0x"), std::string::npos)
        << refused.err;
}

TEST(DebianMirror, CrawlFindsExactlyTheHeadersThatTheIndexesHold) {
    const ProcessResult crawl = test::run_kbuild(with_cache({"crawl", "--distro", "debian", "--output", "json"}));
    ASSERT_EQ(crawl.exit_code, 0) << crawl.err;
    std::set<std::string> found;
    const Json crawled = Json::parse(crawl.out);
    for (const auto& r : crawled["releases"]) {
        found.insert(r["kernelrelease"].get<std::string>());
        if (!r.contains("unavailable")) {
            EXPECT_EQ(r["packages"].size(), 3u) << r.dump();
        }
    }

    // The same suites read by hand: curl, xz and grep-dctrl, never kbuild's parser. A kernel's
    // headers package depends on its -common package; meta packages (linux-headers-6.1-amd64)
    // do not.
    std::string mirrors;
    for (const auto& uri : apt_mirror_uris(read_apt_sources())) mirrors += uri + " ";
    const std::string script = R"(
        for suite in bullseye bullseye-updates bullseye-security bookworm bookworm-updates \
                     bookworm-security trixie trixie-updates trixie-security; do
          for m in )" + mirrors +
                               R"(; do
            curl -sf "$m/dists/$suite/Release" >/dev/null || continue
            curl -sf "$m/dists/$suite/main/binary-amd64/Packages.xz" | xz -dc |
              grep-dctrl -n -s Package -e -P '^linux-headers-[0-9].*-amd64$' -a \
                         -F Depends -e 'linux-headers-[^ ]*-common'
          done
        done | sed 's/^linux-headers-//' | sort -u)";
    const ProcessResult independent = run_process({"bash", "-c", script});
    ASSERT_EQ(independent.exit_code, 0) << independent.err;
    std::set<std::string> expected;
    std::istringstream lines(independent.out);
    for (std::string line; std::getline(lines, line);)
        if (!line.empty()) expected.insert(line);
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(found, expected);
}

TEST(DebianMirror, BuildsTheNewestBookwormKernelAndRecordsABullseyeCompilerMismatch) {
    const std::string bookworm = newest(kBookworm, "^6\\.1\\.0-[0-9]+-amd64$");
    const std::string bullseye = newest(kBullseye, "^5\\.10\\.0-[0-9]+-amd64$");
    test::TempDir out;
    const ProcessResult r = test::run_kbuild(
        with_cache({"build", "--builder", "local", "--distro", "debian", "--option",
                    "suites=bookworm,bookworm-updates,bookworm-security,bullseye,bullseye-updates,bullseye-security",
                    "--kernel", "^(" + bookworm + "|" + bullseye + ")$", "--module-src",
                    (test::source_dir() / "examples/hello").string(), "--out", out.path().string()}));
    const Json index = index_of(out.path());

    const Json& built = target_of(index, bookworm);
    ASSERT_EQ(built["status"], "built") << built.dump(2) << r.err;
    ASSERT_EQ(built["artifacts"].size(), 1u);
    const std::string artifact = built["artifacts"][0]["path"];
    EXPECT_EQ(artifact, "hello-1.0.0-x86_64-" + bookworm + "-" + built["config_md5"].get<std::string>() + ".ko");
    const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", (out / artifact).string()});
    EXPECT_EQ(modinfo.out.rfind(bookworm + " ", 0), 0u) << modinfo.out;
    EXPECT_EQ(built["compiler"].get<std::string>().rfind("gcc-12 ", 0), 0u);
    EXPECT_EQ(built["builder"], "local");
    EXPECT_TRUE(fs::exists(out / built["log"].get<std::string>()));

    const Json& other = target_of(index, bullseye);
    if (other["status"] == "built") {
        EXPECT_EQ(r.exit_code, 0);  // this host has gcc-10
    } else {
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_EQ(other["status"], "failed");
        EXPECT_NE(other["reason"].get<std::string>().find("was built by gcc-10"), std::string::npos) << other["reason"];
        EXPECT_NE(r.err.find(bullseye + ": failed: kernel " + bullseye + " was built by gcc-10"), std::string::npos)
            << r.err;
    }

    // The same inputs again: skipped, nothing rebuilt, the artifact untouched.
    const auto written = fs::last_write_time(out / artifact);
    const ProcessResult again = test::run_kbuild(with_cache(
        {"build", "--builder", "local", "--distro", "debian", "--option", kBookworm, "--kernel", "^" + bookworm + "$",
         "--module-src", (test::source_dir() / "examples/hello").string(), "--out", out.path().string()}));
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(target_in(out.path(), bookworm)["status"], "skipped");
    EXPECT_EQ(fs::last_write_time(out / artifact), written);
}

TEST(DebianMirror, ASyntaxErrorIsARecordedFailureWithItsLog) {
    const std::string bookworm = newest(kBookworm, "^6\\.1\\.0-[0-9]+-amd64$");
    test::TempDir out;
    const ProcessResult r = test::run_kbuild(
        with_cache({"build", "--builder", "local", "--distro", "debian", "--option", kBookworm, "--kernel",
                    "^" + bookworm + "$", "--module-src",
                    (test::source_dir() / "tests/fixtures/modules/broken").string(), "--out", out.path().string()}));
    EXPECT_EQ(r.exit_code, 1);
    const Json target = target_in(out.path(), bookworm);
    EXPECT_EQ(target["status"], "failed");
    const std::string reason = target["reason"];
    EXPECT_NE(reason.find("broken.c"), std::string::npos) << reason;
    EXPECT_NE(reason.find("error:"), std::string::npos) << reason;
    const std::string log = test::read_file(out / target["log"].get<std::string>());
    EXPECT_NE(log.find("error:"), std::string::npos);
    EXPECT_TRUE(target["artifacts"].empty());
    for (const auto& entry : fs::directory_iterator(out.path()))
        EXPECT_NE(entry.path().extension(), ".ko") << entry.path();
}

// A Debian archive on 127.0.0.1 made from the real packages of one kernel with
// dpkg-scanpackages and apt-ftparchive, served slowly so kbuild can be killed mid-download.
TEST(DebianMirror, AnInterruptedLocalBuildLeavesNoProcessBehind) {
    const std::string bookworm = newest(kBookworm, "^6\\.1\\.0-[0-9]+-amd64$");
    test::TempDir module, out;
    // A build that sleeps under a name no other test's build uses.
    const std::string marker = "sleep 3600." + std::to_string(::getpid());
    const std::string pattern = "[s]" + marker.substr(1);  // a pattern its own shell does not match
    test::write_file(module / "Kbuild", "$(shell " + marker + ")\nobj-m := sleeper.o\n");
    fs::copy_file(test::source_dir() / "tests/fixtures/modules/sleeper/sleeper.c", module / "sleeper.c");
    const test::Stopped stopped = test::stop_kbuild_when(
        with_cache({"build", "--builder", "local", "--distro", "debian", "--option", kBookworm, "--kernel",
                    "^" + bookworm + "$", "--module-src", module.path().string(), "--out", out.path().string()}),
        "pgrep -f '" + pattern + "' >/dev/null", "INT");
    EXPECT_TRUE(stopped.seen) << "the build never started";
    EXPECT_EQ(stopped.exit_status, 130);
    EXPECT_EQ(run_process({"pgrep", "-f", pattern}).out, "") << "make or its children outlived kbuild";
    EXPECT_FALSE(fs::exists(out / "index.json") &&
                 test::read_file(out / "index.json").find("\"failed\"") != std::string::npos);
}

TEST(DebianMirror, AKilledDownloadIsNeverTakenAsFinished) {
    const std::string bookworm = newest(kBookworm, "^6\\.1\\.0-[0-9]+-amd64$");
    test::TempDir archive, out, cache;
    // The kernel's packages, as the real mirror lists them.
    const ProcessResult plan = test::run_kbuild(with_cache(
        {"crawl", "--distro", "debian", "--option", kBookworm, "--kernel", "^" + bookworm + "$", "--output", "json"}));
    const Json release = Json::parse(plan.out)["releases"][0];
    const fs::path pool = archive / "pool/main/l/linux";
    fs::create_directories(pool);
    for (const auto& p : release["headers"]) {
        const std::string url = p;
        const ProcessResult get = run_process({"curl", "-sf", "-o", (pool / fs::path(url).filename()).string(), url});
        ASSERT_EQ(get.exit_code, 0) << url;
    }
    const fs::path dists = archive / "dists/bookworm/main/binary-amd64";
    fs::create_directories(dists);
    ASSERT_EQ(run_process({"sh", "-c",
                           "cd " + archive.path().string() +
                               " && dpkg-scanpackages -m pool > dists/bookworm/main/binary-amd64/Packages"
                               " && xz -k dists/bookworm/main/binary-amd64/Packages"
                               " && apt-ftparchive -o APT::FTPArchive::Release::Codename=bookworm"
                               " release dists/bookworm > Release.tmp && mv Release.tmp dists/bookworm/Release"})
                  .exit_code,
              0);
    test::MirrorServer server(archive.path());
    server.throttle(2 << 20);  // 2 MiB/s: the common package takes seconds

    const std::vector<std::string> build = {
        "--cache-dir", cache.path().string(), "build", "--builder", "local", "--distro", "debian", "--mirror",
        server.url(),
        // The copy is unsigned: this test is about downloads cut short, not trust (trust_test).
        "--insecure-mirror", server.url(), "--option", "suites=bookworm", "--module-src",
        (test::source_dir() / "examples/hello").string(), "--out", out.path().string()};
    // Killed (-9) as soon as a .part file exists.
    const std::string parts = "find '" + cache.path().string() + "' -name '*.part-*'";
    const test::Stopped killed = test::stop_kbuild_when(build, "[ -n \"$(" + parts + " 2>/dev/null)\" ]", "KILL");
    EXPECT_TRUE(killed.seen) << "no .part file was seen before the kill";
    EXPECT_FALSE(fs::exists(out / "index.json") && index_of(out.path()).dump().find("\"built\"") != std::string::npos);

    server.throttle(0);
    const ProcessResult rerun = test::run_kbuild(build);
    ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
    const Json target = target_in(out.path(), bookworm);
    EXPECT_EQ(target["status"], "built");
    const ProcessResult modinfo =
        run_process({"modinfo", "-F", "vermagic", (out / target["artifacts"][0]["path"].get<std::string>()).string()});
    EXPECT_EQ(modinfo.out.rfind(bookworm + " ", 0), 0u);
    EXPECT_EQ(run_process({"sh", "-c", parts}).out, "") << "the killed download's part outlived the next start";
}

}  // namespace
