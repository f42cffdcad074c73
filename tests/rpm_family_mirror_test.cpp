// The suse, photon and alinux plugins against repositories on 127.0.0.1 (labels docker,
// network): the newest bookworm kernel's real headers re-labelled as SUSE's split packages and
// Photon's devel package (tests/fixtures/rpm/make-split-repo) and as Alibaba Cloud Linux's
// kernel-devel (make-rpm-repo), indexed by createrepo_c, crawled, built in a container and
// checked by the module's vermagic.
#include "mirror_server.h"
#include "serve_client.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>
#include <regex>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::string cache_dir() {
    return (test::binary_dir() / "test-cache").string();
}

// Runs a fixture script over the newest bookworm kernel's packages; its last output line
// (make-split-repo prints the release).
std::string make(const std::string& script, const std::vector<std::string>& args) {
    const test::DebianKernel kernel = test::newest_bookworm_kernel(cache_dir());
    std::vector<std::string> argv{(test::source_dir() / "tests/fixtures/rpm" / script).string()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), kernel.debs.begin(), kernel.debs.end());
    const ProcessResult r = run_process(argv);
    if (r.exit_code != 0) throw Error(script + ": " + r.err);
    return r.out.substr(0, r.out.find('\n'));
}

struct BuildRun {
    ProcessResult result;
    std::map<std::string, Json> targets;  // kernelrelease -> index record
};

BuildRun build(const std::string& distro, const std::string& mirror, const std::string& repos, const fs::path& out) {
    BuildRun run;
    run.result = test::run_kbuild({"--cache-dir", cache_dir(), "build", "--distro", distro, "--mirror", mirror,
                                   "--option", "repos=" + repos, "--builder", "docker", "--module-src",
                                   (test::source_dir() / "examples/hello").string(), "--out", out.string()});
    const Json index = Json::parse(test::read_file(out / "index.json"));
    for (const auto& t : index["targets"]) run.targets[t["kernelrelease"]] = t;
    return run;
}

void expect_built(const fs::path& out, const Json& target, const std::string& release) {
    ASSERT_EQ(target["status"], "built") << target.dump(2);
    const fs::path ko = out / target["artifacts"][0]["path"].get<std::string>();
    const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", ko.string()});
    EXPECT_EQ(modinfo.out.rfind(release + " SMP ", 0), 0u) << modinfo.out;
}

// SLE 15 SP5's update repository: a kernel whose flavour package was rebuilt (.3) over the
// noarch source tree of the first build (.2), built over the two trees; and one whose noarch
// half is missing, named in one line and not built.
TEST(RpmFamilyMirror, SuseSplitTreesBuildAndAMissingNoarchHalfIsNamed) {
    test::TempDir archive, out;
    const std::string repo = "SUSE/Updates/SLE-Module-Basesystem/15-SP5/x86_64/update";
    const std::string good =
        make("make-split-repo", {"--out", archive.path().string(), "--repo-path", repo, "--family", "suse", "--version",
                                 "6.1.192", "--rpm-release", "150500.55.3", "--noarch-release", "150500.55.2"});
    EXPECT_EQ(good, "6.1.192-150500.55-default");
    const std::string alone =
        make("make-split-repo", {"--out", archive.path().string(), "--repo-path", repo, "--family", "suse", "--version",
                                 "6.1.192", "--rpm-release", "150500.56.1", "--omit-noarch"});
    test::MirrorServer server(archive.path());
    const std::string repos = "SUSE/Updates/SLE-Module-Basesystem/15-SP5/{arch}/update";

    const ProcessResult crawl = test::run_kbuild({"--cache-dir", cache_dir(), "crawl", "--distro", "sles", "--mirror",
                                                  server.url(), "--option", "repos=" + repos, "--output", "json"});
    ASSERT_EQ(crawl.exit_code, 0) << crawl.err;
    const Json crawled = Json::parse(crawl.out);
    ASSERT_EQ(crawled["releases"].size(), 2u) << crawl.out;

    const BuildRun run = build("sles", server.url(), repos, out.path());
    ASSERT_EQ(run.targets.size(), 2u) << run.result.err;
    expect_built(out.path(), run.targets.at(good), good);
    EXPECT_EQ(run.targets.at(good)["target"], "sles");
    const Json& packages = run.targets.at(good)["packages"];
    ASSERT_EQ(packages.size(), 3u) << packages;
    EXPECT_NE(packages[1].get<std::string>().find("/noarch/kernel-devel-6.1.192-150500.55.2.noarch.rpm"),
              std::string::npos);

    EXPECT_EQ(run.targets.at(alone)["status"], "unavailable") << run.targets.at(alone).dump(2);
    const std::string why =
        "no kernel-devel-6.1.192-150500.56.*.noarch.rpm listed: it holds "
        "/usr/src/linux-6.1.192-150500.56, the source tree kernel-default-devel builds over";
    EXPECT_EQ(run.targets.at(alone)["reason"], why);
    EXPECT_EQ(test::lines_with(run.result.err, why), 1) << run.result.err;

    // The build service serves the target with nothing of SUSE in the host: a node's request
    // for the kernel, answered with the module.
    test::TempDir serve_dir;
    test::ServeProcess server_process(serve_dir.path(),
                                      "[serve]\nposts_per_minute = 0\n\n[serve.modules.hello]\npath = \"" +
                                          (test::source_dir() / "examples/hello").string() +
                                          "\"\nversion = \"1.0.0\"\n\n[sles]\nmirror = \"" + server.url() +
                                          "\"\noption = [\"repos=" + repos + "\"]\n",
                                      cache_dir(), {"--builder", "docker"});
    test::ModuleAsk ask;
    ask.build_type = "sles";
    ask.kernelrelease = good;
    test::Reply reply = test::http(server_process.port(), "POST", "/v1/module", ask.body());
    ASSERT_EQ(reply.status, 202) << reply.body << server_process.log();
    const std::string location = reply.header("location");
    reply = test::wait_built(server_process.port(), location, std::chrono::minutes(5));
    ASSERT_EQ(reply.status, 200) << reply.body << server_process.log();
    test::write_file(serve_dir / "got.ko", reply.body);
    const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", (serve_dir / "got.ko").string()});
    EXPECT_EQ(modinfo.out.rfind(good + " SMP ", 0), 0u) << modinfo.out;
}

// Photon OS 5's updates (an esx kernel: /usr/src/linux-headers-<release>) and Alibaba Cloud
// Linux 3's (a CentOS-like kernel-devel), each crawled and built.
TEST(RpmFamilyMirror, PhotonAndAlibabaCloudLinuxBuild) {
    test::TempDir archive, photon_out, alinux_out;
    const std::string esx = make("make-split-repo", {"--out", archive.path().string(), "--repo-path",
                                                     "5.0/photon_updates_5.0_x86_64", "--family", "photon", "--version",
                                                     "6.1.192", "--rpm-release", "3.ph5", "--flavour", "esx"});
    EXPECT_EQ(esx, "6.1.192-3.ph5-esx");
    const std::string al8 = "6.1.192-16.3.al8.x86_64";
    make("make-rpm-repo",
         {"--out", archive.path().string(), "--layout", "centos", "--repo-path", "3/updates/x86_64", "--release", al8});
    test::MirrorServer server(archive.path());

    const BuildRun photon = build("photon", server.url(), "5.0/photon_updates_5.0_{arch}", photon_out.path());
    EXPECT_EQ(photon.result.exit_code, 0) << photon.result.err;
    ASSERT_EQ(photon.targets.size(), 1u);
    expect_built(photon_out.path(), photon.targets.at(esx), esx);
    EXPECT_EQ(photon.targets.at(esx)["target"], "photon");

    const BuildRun alinux = build("alinux", server.url(), "3/updates/{arch}", alinux_out.path());
    EXPECT_EQ(alinux.result.exit_code, 0) << alinux.result.err;
    ASSERT_EQ(alinux.targets.size(), 1u);
    expect_built(alinux_out.path(), alinux.targets.at(al8), al8);
}

}  // namespace
