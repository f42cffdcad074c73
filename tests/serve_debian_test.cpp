// `kbuild serve` building for a real Debian kernel from the mirror apt uses (label network),
// with the local builder: a node's whole exchange (POST, 202, poll, 200, GET, vermagic), 200
// nodes asking at once, a failure answered with its reason and log, and restarts mid-build.
#include "serve_client.h"
#include "test_util.h"

#include <kbuild/digest.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <iostream>
#include <thread>

namespace fs = std::filesystem;
using namespace kbuild;
using test::http;
using test::Reply;
using test::wait_built;
using Clock = std::chrono::steady_clock;

namespace {

fs::path cache_dir() {
    return test::binary_dir() / "test-cache";
}

const std::string& bookworm_release() {
    static const std::string release = test::newest_bookworm_kernel(cache_dir()).release;
    return release;
}

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    return values[std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())))];
}

Json state_of(const fs::path& out, const std::string& key) {
    const Json state = Json::parse(test::read_file(out / "service.json"));
    for (const auto& t : state["targets"])
        if (t["key"] == key) return t;
    return {};
}

class ServeDebian : public ::testing::Test {
protected:
    void SetUp() override {
        // A module whose build takes a while: its Kbuild sleeps each time make reads it.
        slow_ = dir_ / "slow";
        test::write_file(slow_ / "Kbuild", "$(shell sleep 6)\nobj-m := slow.o\n");
        test::write_file(slow_ / "slow.c", test::read_file(test::source_dir() / "examples/hello/hello.c"));
    }

    std::string config(const std::string& serve = "") const {
        return "[serve]\nposts_per_minute = 0\njobs = 2\n" + serve + "\n[serve.modules.hello]\npath = \"" +
               (test::source_dir() / "examples/hello").string() + "\"\nversion = \"1.0.0\"\n" +
               "\n[serve.modules.broken]\npath = \"" + (test::source_dir() / "tests/fixtures/modules/broken").string() +
               "\"\nversion = \"0.0.1\"\n\n[serve.modules.slow]\npath = \"" + slow_.string() +
               "\"\nversion = \"2.0.0-slow\"\n\n[debian]\noption = "
               "[\"suites=bookworm,bookworm-updates,bookworm-security\"]\n";
    }

    std::unique_ptr<test::ServeProcess> serve(const std::string& table = "") {
        return std::make_unique<test::ServeProcess>(dir_.path(), config(table), cache_dir());
    }

    // The artifact's record in its pipeline's index.json.
    Json index_record(const std::string& module) const {
        const fs::path index = dir_ / "out/builds/debian" / module / "index.json";
        const Json doc = Json::parse(test::read_file(index));
        for (const auto& t : doc["targets"])
            if (t["kernelrelease"] == bookworm_release()) return t;
        return {};
    }

    void expect_module(const std::string& bytes, const std::string& module) {
        const fs::path file = dir_ / ("got-" + module + ".ko");
        test::write_file(file, bytes);
        const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", file.string()});
        EXPECT_EQ(modinfo.out.rfind(bookworm_release() + " ", 0), 0u) << modinfo.out << modinfo.err;
        const Json record = index_record(module);
        ASSERT_EQ(record["status"], "built") << record.dump(2);
        EXPECT_EQ(record["artifacts"][0]["sha256"], sha256_text(bytes));
    }

    test::TempDir dir_;
    fs::path slow_;
};

}  // namespace

TEST_F(ServeDebian, ANodeAsksWaitsAndGetsAModuleForItsKernel) {
    const std::string release = bookworm_release();
    auto server = serve();
    const test::ModuleAsk ask{"debian", "x86_64", release};
    auto started = Clock::now();
    Reply r = http(server->port(), "POST", "/v1/module", ask.body());
    const double post_ms = ms_since(started);
    ASSERT_EQ(r.status, 202) << r.body;
    const std::string location = r.header("location");
    EXPECT_EQ(location, "/v1/module/debian/x86_64/1.0.0/" + release + "/1/" + sha256_text(ask.config) + "/hello.ko");

    started = Clock::now();
    r = wait_built(server->port(), location);
    const double build_s = ms_since(started) / 1000;
    ASSERT_EQ(r.status, 200) << r.body << server->log();
    EXPECT_EQ(r.header("content-type"), "application/octet-stream");
    expect_module(r.body, "hello");
    EXPECT_EQ(r.header("etag"), "\"" + sha256_text(r.body) + "\"");

    // Asked again: answered from what is built, with where and what it is.
    started = Clock::now();
    const Reply again = http(server->port(), "POST", "/v1/module", ask.body());
    const double built_post_ms = ms_since(started);
    ASSERT_EQ(again.status, 200) << again.body;
    const Json answer = again.json();
    EXPECT_EQ(answer["status"], "built");
    EXPECT_EQ(answer["location"], location);
    EXPECT_EQ(answer["artifacts"][0]["sha256"], sha256_text(r.body));
    EXPECT_EQ(answer["artifacts"][0]["vermagic"].get<std::string>().rfind(release + " ", 0), 0u);
    EXPECT_EQ(answer["config_match"], "no");  // a made-up config, not the headers'
    // x86_64 and amd64 name one target.
    EXPECT_EQ(http(server->port(), "POST", "/v1/module", test::ModuleAsk{"debian", "amd64", release}.body()).status,
              200);
    started = Clock::now();
    const Reply get = http(server->port(), "GET", location);
    const double get_ms = ms_since(started);
    EXPECT_EQ(get.body, r.body);
    const Json metrics = http(server->port(), "GET", "/v1/metrics").json();
    EXPECT_EQ(metrics["builds_done"], 1);
    EXPECT_GT(metrics["mean_build_seconds"].get<double>(), 0);
    std::cout << "figure: POST (new target) " << post_ms << " ms, build " << build_s << " s, POST (built) "
              << built_post_ms << " ms, GET " << get.body.size() << " bytes " << get_ms << " ms\n";

    // The artifact changed on disk: rebuilt, not served.
    const fs::path artifact =
        dir_ / "out" /
        state_of(server->out(), location.substr(11, location.rfind('/') - 11))["artifacts"][0]["path"]
            .get<std::string>();
    ASSERT_TRUE(fs::is_regular_file(artifact)) << artifact;
    test::write_file(artifact, "not a module");
    r = http(server->port(), "GET", location);
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_NE(r.json()["reason"].get<std::string>().find("no longer matches its sha256"), std::string::npos) << r.body;
    r = wait_built(server->port(), location);
    ASSERT_EQ(r.status, 200) << r.body;
    expect_module(r.body, "hello");
}

TEST_F(ServeDebian, AFailedBuildIsAnsweredWithItsReasonAndLogAndAnUnknownKernelIsNamed) {
    auto server = serve();
    Reply r = http(server->port(), "POST", "/v1/module",
                   test::ModuleAsk{"debian", "x86_64", bookworm_release(), "1", "0.0.1"}.body());
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.header("location").substr(r.header("location").rfind('/')), "/broken.ko");
    r = wait_built(server->port(), r.header("location"));
    ASSERT_EQ(r.status, 422) << r.body;
    const Json failed = r.json();
    EXPECT_NE(failed["reason"].get<std::string>().find("broken.c"), std::string::npos) << r.body;
    EXPECT_NE(failed["reason"].get<std::string>().find("error:"), std::string::npos) << r.body;
    const fs::path log = server->out() / failed["log"].get<std::string>();
    EXPECT_NE(test::read_file(log).find("error:"), std::string::npos) << log;
    // Asked again soon: the same answer, no new build.
    r = http(server->port(), "POST", "/v1/module",
             test::ModuleAsk{"debian", "x86_64", bookworm_release(), "1", "0.0.1"}.body());
    EXPECT_EQ(r.status, 422);
    EXPECT_EQ(http(server->port(), "GET", "/v1/metrics").json()["builds_failed"], 1);

    r = http(server->port(), "POST", "/v1/module", test::ModuleAsk{"debian", "x86_64", "6.1.0-9999-amd64"}.body());
    ASSERT_EQ(r.status, 202);
    r = wait_built(server->port(), r.header("location"));
    EXPECT_EQ(r.status, 422);
    EXPECT_NE(r.json()["reason"].get<std::string>().find("debian: no kernel 6.1.0-9999-amd64 (amd64) in the crawl"),
              std::string::npos)
        << r.body;
    r = http(server->port(), "POST", "/v1/module", test::ModuleAsk{"debian", "x86_64", bookworm_release(), "7"}.body());
    r = wait_built(server->port(), r.header("location"));
    EXPECT_EQ(r.status, 422);
    EXPECT_NE(r.json()["reason"].get<std::string>().find("as #1, not #7"), std::string::npos) << r.body;
}

TEST_F(ServeDebian, TwoHundredNodesAskingAtOnceShareOneBuildAndGetTheSameBytes) {
    auto server = serve();
    const int port = server->port();
    const std::size_t idle_kib = server->rss_kib();
    const test::ModuleAsk ask{"debian", "x86_64", bookworm_release()};
    const std::string body = ask.body();

    constexpr int kClients = 200;
    std::mutex mutex;
    std::condition_variable go;
    bool ready = false;
    std::vector<double> post_ms(kClients), get_ms;
    std::vector<std::string> digests(kClients), errors;
    std::atomic<std::size_t> peak_kib{0};
    std::atomic<bool> sampling{true};
    std::thread sampler([&] {
        while (sampling) {
            peak_kib = std::max<std::size_t>(peak_kib, server->rss_kib());
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.emplace_back([&, i] {
            {
                std::unique_lock lock(mutex);
                go.wait(lock, [&] { return ready; });
            }
            try {
                const auto started = Clock::now();
                Reply r = http(port, "POST", "/v1/module", body);
                post_ms[i] = ms_since(started);
                if (r.status != 202 && r.status != 200) throw Error("POST: " + std::to_string(r.status) + " " + r.body);
                const std::string location = r.json()["location"];
                for (;;) {
                    const auto asked = Clock::now();
                    r = http(port, "GET", location);
                    if (r.status != 202) {
                        std::lock_guard lock(mutex);
                        get_ms.push_back(ms_since(asked));
                        break;
                    }
                    std::this_thread::sleep_for(std::chrono::milliseconds(250));
                }
                if (r.status != 200) throw Error("GET: " + std::to_string(r.status) + " " + r.body);
                digests[i] = sha256_text(r.body);
            } catch (const std::exception& e) {
                std::lock_guard lock(mutex);
                errors.push_back(e.what());
            }
        });
    }
    const auto started = Clock::now();
    {
        std::lock_guard lock(mutex);
        ready = true;
    }
    go.notify_all();
    for (auto& c : clients) c.join();
    const double all_s = ms_since(started) / 1000;
    sampling = false;
    sampler.join();

    EXPECT_TRUE(errors.empty()) << errors.size() << " clients failed, e.g. " << errors.front();
    EXPECT_EQ(std::count(digests.begin(), digests.end(), digests[0]), kClients);
    const Json record = index_record("hello");
    EXPECT_EQ(record["artifacts"][0]["sha256"], digests[0]);
    const Json metrics = http(port, "GET", "/v1/metrics").json();
    EXPECT_EQ(metrics["builds_done"], 1);
    EXPECT_EQ(metrics["builds_failed"], 0);
    EXPECT_EQ(Json::parse(test::read_file(server->out() / "service.json"))["targets"].size(), 1u);
    const std::size_t hwm_kib = server->peak_rss_kib();
    std::cout << "figure: 200 clients, one build: " << all_s << " s; server RSS idle " << idle_kib / 1024.0
              << " MiB, peak sampled " << peak_kib / 1024.0 << " MiB, VmHWM " << hwm_kib / 1024.0 << " MiB; POST p50 "
              << percentile(post_ms, 0.5) << " ms p99 " << percentile(post_ms, 0.99) << " ms; final GET p50 "
              << percentile(get_ms, 0.5) << " ms p99 " << percentile(get_ms, 0.99) << " ms\n";
    // Bounded: the thread pool and the body limit, not the number of clients.
    EXPECT_LT(hwm_kib, idle_kib + 64 * 1024 * test::kMemoryFactor);
}

TEST_F(ServeDebian, AKillMidBuildServesNothingHalfMadeAndTheRestartBuildsIt) {
    auto server = serve();
    const test::ModuleAsk ask{"debian", "x86_64", bookworm_release(), "1", "2.0.0-slow"};
    Reply r = http(server->port(), "POST", "/v1/module", ask.body());
    ASSERT_EQ(r.status, 202) << r.body;
    const std::string location = r.header("location");
    const std::string key = location.substr(11, location.rfind('/') - 11);
    // Wait for the compile itself: its log exists once the pipeline has unpacked the kernel.
    const fs::path logs = server->out() / "builds/debian/slow/logs";
    for (int i = 0; i < 2400 && !(fs::is_directory(logs) && !fs::is_empty(logs)); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(fs::is_directory(logs)) << server->log();
    EXPECT_EQ(http(server->port(), "GET", location).status, 202);
    EXPECT_EQ(server->stop(SIGKILL), 128 + SIGKILL);

    EXPECT_EQ(state_of(server->out(), key)["status"], "building");
    // What a kill during the artifact's copy would leave: a temporary, never a finished name.
    const fs::path dir = server->out() / "builds/debian/slow";
    for (const auto& entry : fs::directory_iterator(dir)) EXPECT_NE(entry.path().extension(), ".ko") << entry.path();
    const fs::path partial = dir / ("slow-2.0.0-slow-x86_64-" + bookworm_release() + "-0123.ko.tmp-1-0");
    test::write_file(partial, "half a mod");

    server = serve();
    EXPECT_FALSE(fs::exists(partial));
    r = http(server->port(), "GET", location);
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.json()["reason"], "queued again: the service stopped during its build");
    r = wait_built(server->port(), location);
    ASSERT_EQ(r.status, 200) << r.body << server->log();
    expect_module(r.body, "slow");
}

TEST_F(ServeDebian, SigtermLetsARunningBuildFinishWithinTheGrace) {
    auto server = serve("shutdown_grace = 120\n");
    const test::ModuleAsk ask{"debian", "x86_64", bookworm_release(), "1", "2.0.0-slow"};
    Reply r = http(server->port(), "POST", "/v1/module", ask.body());
    ASSERT_EQ(r.status, 202) << r.body;
    const std::string location = r.header("location");
    const std::string key = location.substr(11, location.rfind('/') - 11);
    for (int i = 0; i < 600 && http(server->port(), "GET", "/v1/metrics").json()["building"] != 1; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ::kill(server->pid(), SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(http(server->port(), "POST", "/v1/module", ask.body()).status, 503);
    EXPECT_EQ(server->stop(SIGTERM, std::chrono::seconds(180)), 128 + SIGTERM);
    EXPECT_EQ(state_of(server->out(), key)["status"], "built") << server->log();

    server = serve();
    r = http(server->port(), "GET", location);
    ASSERT_EQ(r.status, 200) << r.body;
    expect_module(r.body, "slow");
}
