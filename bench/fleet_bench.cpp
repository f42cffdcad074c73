// fleet_bench: every Debian kernel on the mirror, as a fleet operator builds them. One cold
// `kbuild build --jobs 2 --cache-max SIZE --builder docker` of a multi-file driver against the
// manual way measured in the same run: every package fetched by curl, one after another (the
// download time); then each kernel unpacked by dpkg-deb and its `make M=` run in the builder
// image kbuild chose for it, two kernels at a time; then the first few kernels' makes alone.
// Two figures: kbuild's time against the download time plus the makes alone x kernels / 2 (the
// ideal on 2 cores, target at most 1.1), and against the download time plus the manual way's
// own two-at-a-time wall time (which this machine's cores make slower than the ideal). Also
// kbuild's peak RSS, the most its cache held by its own account (its eviction log lines) and
// the growth of its file system's use (sampled; anything else writing there counts too),
// beside the disk the unpacked trees would take if all were kept.
//
// Usage: fleet_bench <kbuild> <module-src> <work-dir> [--suites LIST] [--kernel REGEX]
//                    [--latest N] [--cache-max SIZE] [--jobs N] [--alone N]
// <module-src> is the driver's Kbuild directory (tests/fixtures/drivers/probedriver configured
// by CMake: <build>/src). <work-dir> is emptied first; everything the run makes stays inside it.
#include "fetch/cache.h"
#include "util/process.h"

#include <kbuild/types.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "fleet_bench: %s\n", what.c_str());
    std::exit(1);
}

ProcessResult must(const std::vector<std::string>& argv, const ProcessOptions& options = {}) {
    ProcessResult r = run_process(argv, options);
    if (r.exit_code != 0) fail(argv[0] + " failed (" + std::to_string(r.exit_code) + "): " + r.err);
    return r;
}

// VmHWM of a running process, in KiB (0 once it is gone).
long peak_rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return 0;
}

struct Watched {
    int exit_code = -1;
    double seconds = 0;
    long peak_rss_kib = 0;
    std::uint64_t peak_disk = 0;
};

// Bytes in use on the file system holding `dir`.
std::uint64_t used_on(const fs::path& dir) {
    struct statvfs fs {};
    if (::statvfs(dir.c_str(), &fs) != 0) fail("statvfs " + dir.string());
    return static_cast<std::uint64_t>(fs.f_blocks - fs.f_bfree) * fs.f_frsize;
}

// Runs argv (output to `log`), sampling its peak RSS and the growth of the disk use of the
// file system holding `dir` (cheap enough to sample every 200 ms, unlike walking the cache).
Watched run_watched(const std::vector<std::string>& argv, const fs::path& log, const fs::path& dir) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    Watched w;
    const auto start = Clock::now();
    pid_t pid = 0;
    if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) fail("cannot start " + argv[0]);
    posix_spawn_file_actions_destroy(&actions);
    const std::uint64_t disk_before = used_on(dir);
    auto last_progress = Clock::now();
    for (;;) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            w.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        w.peak_rss_kib = std::max(w.peak_rss_kib, peak_rss_kib(pid));
        const std::uint64_t used = used_on(dir);
        if (used > disk_before) w.peak_disk = std::max(w.peak_disk, used - disk_before);
        if (Clock::now() - last_progress > std::chrono::seconds(60)) {
            std::fprintf(stderr, "  ... %.0f s, peak RSS %.1f MiB, peak disk %s\n", since(start),
                         w.peak_rss_kib / 1024.0, size_text(w.peak_disk).c_str());
            last_progress = Clock::now();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    w.seconds = since(start);
    return w;
}

// The most the cache held by kbuild's own account: what it held before each eviction, as its
// log says ("cache: evicted N entries (F), K kept of ..."), F + K.
std::uint64_t cache_peak_from_log(const fs::path& log) {
    static const std::regex line(
        R"(cache: evicted [0-9]+ entries \(([0-9.]+) ([KMGT]?i?B)\), ([0-9.]+) ([KMGT]?i?B) kept)");
    const auto bytes = [](const std::string& number, const std::string& unit) {
        const double scale = unit == "KiB" ? 1024.0 : unit == "MiB" ? 1048576.0 : unit == "GiB" ? 1073741824.0 : 1.0;
        return static_cast<std::uint64_t>(std::stod(number) * scale);
    };
    std::uint64_t peak = 0;
    std::ifstream in(log);
    for (std::string text; std::getline(in, text);) {
        std::smatch m;
        if (std::regex_search(text, m, line)) peak = std::max(peak, bytes(m[1], m[2]) + bytes(m[3], m[4]));
    }
    return peak;
}

std::string file_name(const std::string& url) {
    return url.substr(url.rfind('/') + 1);
}

// The image a record was built in ("kbuild/builder-debian-bookworm:latest"), or "".
std::string image_of(const Json& target) {
    const std::string builder = target.value("builder", "");
    return builder.rfind("kbuild/", 0) == 0 ? builder : "";
}

struct ByHand {
    double unpack = 0, make = 0;  // seconds
    std::uint64_t tree_bytes = 0;
};

// A kernel by hand: its packages unpacked with dpkg-deb, the driver copied, then `make` in the
// builder image kbuild chose, the tree's /usr/src and /usr/lib entries mounted where they belong.
ByHand by_hand(const Json& target, const fs::path& debs, const fs::path& work, const fs::path& module) {
    const fs::path tree = work / "tree", copy = work / "module";
    fs::remove_all(work);
    fs::create_directories(tree);
    ByHand hand;
    auto start = Clock::now();
    for (const auto& url : target["packages"])
        must({"dpkg-deb", "-x", (debs / file_name(url.get<std::string>())).string(), tree.string()});
    hand.unpack = since(start);
    hand.tree_bytes = disk_use(tree);
    fs::copy(module, copy, fs::copy_options::recursive);
    const std::string release = target["kernelrelease"];
    const std::string kernel_dir = "/usr/src/linux-headers-" + release;
    std::vector<std::string> argv = {"docker", "run", "--rm", "--network", "none", "-u", "0:0"};
    for (const char* dir : {"usr/src", "usr/lib"})
        for (const auto& entry : fs::directory_iterator(tree / dir))
            argv.insert(argv.end(),
                        {"-v", entry.path().string() + ":/" + dir + "/" + entry.path().filename().string() + ":ro"});
    argv.insert(argv.end(), {"-v", copy.string() + ":/m", image_of(target), "make", "-C", kernel_dir, "M=/m", "-j1",
                             "KERNELDIR=" + kernel_dir, "modules"});
    start = Clock::now();
    const ProcessResult r = run_process(argv);
    hand.make = since(start);
    bool made = false;
    for (const auto& entry : fs::directory_iterator(copy)) made |= entry.path().extension() == ".ko";
    if (r.exit_code != 0 || !made) fail("make by hand for " + release + " failed: " + r.out.substr(0, 2000) + r.err);
    fs::remove_all(work);
    return hand;
}

// Every kernel by hand, `lanes` at a time (as `xargs -P` would): the sums and the wall time.
struct HandRun {
    ByHand sum;
    double wall = 0;
};
HandRun all_by_hand(const std::vector<Json>& targets, size_t lanes, const fs::path& debs, const fs::path& work,
                    const fs::path& module) {
    HandRun run;
    std::mutex mutex;
    size_t next = 0;
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (size_t lane = 0; lane < lanes; ++lane)
        threads.emplace_back([&, lane] {
            for (;;) {
                size_t i = 0;
                {
                    std::lock_guard lock(mutex);
                    if (next == targets.size()) return;
                    i = next++;
                }
                const ByHand hand = by_hand(targets[i], debs, work / ("lane-" + std::to_string(lane)), module);
                std::lock_guard lock(mutex);
                run.sum.unpack += hand.unpack;
                run.sum.make += hand.make;
                run.sum.tree_bytes += hand.tree_bytes;
                if (i % 10 == 9) std::fprintf(stderr, "  ... %zu/%zu, %.0f s\n", i + 1, targets.size(), since(start));
            }
        });
    for (auto& thread : threads) thread.join();
    run.wall = since(start);
    return run;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr,
                     "usage: %s <kbuild> <module-src> <work-dir> [--suites LIST] [--kernel REGEX] [--latest N] "
                     "[--cache-max SIZE] [--jobs N]\n",
                     argv[0]);
        return 2;
    }
    const std::string kbuild = fs::absolute(argv[1]);
    const fs::path module = fs::absolute(argv[2]), work = fs::absolute(argv[3]);
    std::string suites =
        "bullseye,bullseye-updates,bullseye-security,bookworm,bookworm-updates,bookworm-security,trixie,"
        "trixie-updates,trixie-security";
    std::string kernel, latest, cache_max = "1G", jobs = "2";
    size_t alone = 4;
    for (int i = 4; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--suites")
            suites = value;
        else if (flag == "--kernel")
            kernel = value;
        else if (flag == "--latest")
            latest = value;
        else if (flag == "--cache-max")
            cache_max = value;
        else if (flag == "--jobs")
            jobs = value;
        else if (flag == "--alone")
            alone = std::stoul(value);
        else
            fail("unknown flag " + flag);
    }
    fs::remove_all(work);
    fs::create_directories(work);
    const fs::path cache = work / "cache", out = work / "out", debs = work / "debs";

    // kbuild, cold: its own crawl, downloads, unpacking, builds, verification and index.
    std::vector<std::string> build = {kbuild,          "--cache-dir", cache.string(), "--cache-max", cache_max,
                                      "build",         "--distro",    "debian",       "--option",    "suites=" + suites,
                                      "--jobs",        jobs,          "--builder",    "docker",      "--module-src",
                                      module.string(), "--out",       out.string()};
    if (!kernel.empty()) build.insert(build.end(), {"--kernel", kernel});
    if (!latest.empty()) build.insert(build.end(), {"--latest", latest});
    std::fprintf(stderr, "fleet_bench: kbuild build, cold (log: %s)\n", (work / "kbuild.log").c_str());
    const Watched ours = run_watched(build, work / "kbuild.log", work);
    if (ours.exit_code != 0) std::fprintf(stderr, "fleet_bench: kbuild exited %d (see its log)\n", ours.exit_code);
    const Json index = Json::parse(std::ifstream(out / "index.json"));
    std::vector<Json> built;
    std::map<std::string, int> statuses;
    for (const auto& target : index["targets"]) {
        ++statuses[target["status"].get<std::string>()];
        if (!target["artifacts"].empty() && !image_of(target).empty()) built.push_back(target);
    }
    if (built.empty()) fail("kbuild built nothing");

    // By hand, the same kernels: each package once with curl, one after another.
    std::set<std::string> urls;
    for (const auto& target : built)
        for (const auto& url : target["packages"]) urls.insert(url.get<std::string>());
    fs::create_directories(debs);
    std::fprintf(stderr, "fleet_bench: curl, %zu packages\n", urls.size());
    const auto download_start = Clock::now();
    for (const auto& url : urls) must({"curl", "-sSf", "-o", (debs / file_name(url)).string(), url});
    const double download = since(download_start);
    const std::uint64_t downloaded = disk_use(debs);

    // Each kernel unpacked and made by hand two at a time (the manual way on 2 cores), then the
    // first few alone: what one make costs when it has the machine to itself.
    std::fprintf(stderr, "fleet_bench: by hand, %zu kernels, 2 at a time\n", built.size());
    const HandRun pairs = all_by_hand(built, 2, debs, work / "hand", module);
    const std::vector<Json> sample(built.begin(), built.begin() + std::min<size_t>(alone, built.size()));
    std::fprintf(stderr, "fleet_bench: by hand, %zu kernels alone\n", sample.size());
    const HandRun single = all_by_hand(sample, 1, debs, work / "hand", module);
    const double n = static_cast<double>(built.size()), make_alone = single.sum.make / sample.size(),
                 make_paired = pairs.sum.make / n;

    std::string summary;
    for (const auto& [status, count] : statuses) summary += " " + status + " " + std::to_string(count);
    std::printf("fleet: %zu kernels (%s), --jobs %s --cache-max %s, docker builders\n", index["targets"].size(),
                summary.substr(1).c_str(), jobs.c_str(), cache_max.c_str());
    std::printf(
        "  kbuild build, cold: %.1f s; peak RSS %.1f MiB; cache at most %s (kbuild's account); the file system's "
        "use grew by at most %s (with whatever else wrote there)\n",
        ours.seconds, ours.peak_rss_kib / 1024.0, size_text(cache_peak_from_log(work / "kbuild.log")).c_str(),
        size_text(ours.peak_disk).c_str());
    std::printf(
        "  by hand: curl %.1f s (%zu packages, %s); then 2 at a time, dpkg-deb -x and make: %.1f s "
        "(unpack %.1f s + make %.1f s in all)\n",
        download, urls.size(), size_text(downloaded).c_str(), pairs.wall, pairs.sum.unpack, pairs.sum.make);
    std::printf("  one make: %.1f s alone (%zu kernels), %.1f s beside another: the machine's 2 cores give %.2fx\n",
                make_alone, sample.size(), make_paired, 2 * make_alone / make_paired);
    std::printf("  unpacked trees, all kept: %s\n", size_text(pairs.sum.tree_bytes).c_str());
    const double ideal = download + make_alone * n / 2, manual = download + pairs.wall;
    std::printf("  ratio kbuild / (curl + make alone x %zu / 2) = %.1f / %.1f = %.2f (target <= 1.1)\n", built.size(),
                ours.seconds, ideal, ours.seconds / ideal);
    std::printf("  ratio kbuild / (curl + the same by hand 2 at a time) = %.1f / %.1f = %.2f\n", ours.seconds, manual,
                ours.seconds / manual);
    fs::remove_all(debs);
    return 0;
}
