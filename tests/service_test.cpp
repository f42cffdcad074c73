// The build service's queue without HTTP: request fields and keys, one build however many ask,
// the states a target goes through, service.json across restarts, artifacts checked before
// they are served. Builds are a fake that writes a file.
#include "serve/service.h"
#include "test_util.h"
#include "util/strings.h"

#include <kbuild/digest.hpp>

#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <thread>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kSha(64, 'a');

ModuleRequest request_for(const std::string& release, const std::string& version = "1.0.0") {
    ModuleRequest r;
    r.build_type = "debian";
    r.arch = "x86_64";
    r.kernelrelease = release;
    r.kernelversion = "1";
    r.module_version = version;
    r.config_sha256 = kSha;
    return r;
}

// A fake build: writes <out>/<release>.ko and reports it, after `gate` opens when one is set.
class FakeBuilds {
public:
    explicit FakeBuilds(fs::path out) : out_(std::move(out)) {}

    BuildRunner runner() {
        return [this](const TargetState& state) { return build(state); };
    }

    void close_gate() {
        std::lock_guard lock(mutex_);
        open_ = false;
    }
    void open_gate() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        changed_.notify_all();
    }
    // Waits until `n` builds have started.
    bool wait_started(int n) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return started_ >= n; });
    }

    std::atomic<int> calls{0};
    std::atomic<bool> fail{false};
    std::vector<std::string> order;  // keys, in the order builds started

private:
    BuildOutcome build(const TargetState& state) {
        ++calls;
        std::unique_lock lock(mutex_);
        order.push_back(state.request.key());
        ++started_;
        changed_.notify_all();
        changed_.wait(lock, [&] { return open_; });
        lock.unlock();
        BuildOutcome outcome;
        outcome.duration_s = 0.5;
        if (fail) {
            outcome.reason = "hello.c:3: error: expected ';'";
            outcome.log = "logs/" + state.request.kernelrelease + ".log";
            return outcome;
        }
        const std::string path = state.request.kernelrelease + ".ko";
        test::write_file(out_ / path, "module for " + state.request.key());
        outcome.built = true;
        outcome.artifacts.push_back({state.module + ".ko", path, sha256_file((out_ / path).string()), "x"});
        return outcome;
    }

    fs::path out_;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool open_ = true;
    int started_ = 0;
};

// Polls until the key has left queued and building.
TargetState wait_done(const BuildQueue& queue, const std::string& key) {
    for (int i = 0; i < 500; ++i) {
        const auto state = queue.find(key);
        if (state && state->status != TargetStatus::queued && state->status != TargetStatus::building) return *state;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw Error(key + ": still not done");
}

Json state_file(const fs::path& out) {
    return Json::parse(test::read_file(out / "service.json"));
}

// What check_field says of a value, "" when it takes it.
std::string field_error(std::string_view field, std::string_view value) {
    return test::error_of([&] { check_field(field, value); });
}

}  // namespace

TEST(ServiceFields, AcceptRealValues) {
    EXPECT_EQ(field_error("buildType", "ubuntu-aws"), "");
    EXPECT_EQ(field_error("architecture", "x86_64"), "");
    EXPECT_EQ(field_error("architecture", "arm64"), "");
    for (const char* release : {"6.1.0-28-amd64", "5.15.0-1036-aws", "4.14.336-257.562.amzn2.x86_64",
                                "3.10.0-1160.80.1.el7.x86_64", "6.6.30-flatcar", "5.4.0+"})
        EXPECT_EQ(field_error("kernelrelease", release), "") << release;
    // What uname -v says after '#': Ubuntu's backports and respins carry more than a number.
    for (const char* version : {"56", "56~20.04.1", "67+cvm1", "9.1", "1_1.26.0"})
        EXPECT_EQ(field_error("kernelversion", version), "") << version;
    EXPECT_EQ(field_error("moduleVersion", "7.0.0+driver"), "");
    EXPECT_EQ(field_error("configSha256", kSha), "");
    EXPECT_EQ(field_error("name", "falco.ko"), "");
}

TEST(ServiceFields, RefuseAnythingThatCouldNameAPathOrCarryShellText) {
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"buildType", ""},
        {"buildType", "../debian"},
        {"buildType", "Debian"},
        {"buildType", "debian;id"},
        {"architecture", "x86"},
        {"architecture", "../x86_64"},
        {"kernelrelease", ".."},
        {"kernelrelease", "6.1.0/../../etc"},
        {"kernelrelease", "6.1..0"},
        {"kernelrelease", "6.1.0-28-amd64$(id)"},
        {"kernelrelease", "6.1.0 -28"},
        {"kernelrelease", std::string("6.1.0\0x", 7)},
        {"kernelrelease", "amd64-6.1"},
        {"kernelrelease", "6.1.0-%2e%2e"},
        {"kernelrelease", "6." + std::string(200, '1')},
        {"kernelversion", "#1 SMP"},
        {"kernelversion", "1/.."},
        {"kernelversion", ""},
        {"kernelversion", "56~20.04.1-Ubuntu"},
        {"kernelversion", "1..2"},
        {"kernelversion", "~20.04.1"},
        {"moduleVersion", ".."},
        {"moduleVersion", "1.0/../../x"},
        {"moduleVersion", "-rf"},
        {"moduleVersion", "1..0"},
        {"moduleVersion", std::string("1\0", 2)},
        {"configSha256", std::string(64, 'A')},
        {"configSha256", "abc"},
        {"name", "../hello.ko"},
        {"name", "hello"},
        {"name", ".ko"},
        {"name", "hello.ko/x.ko"},
    };
    for (const auto& [field, value] : bad) {
        const std::string why = field_error(field, value);
        EXPECT_EQ(why.rfind(field + ": ", 0), 0u) << field << " = " << value << ": " << why;
        EXPECT_EQ(why.find('\0'), std::string::npos);
    }
}

TEST(ServiceFields, KeysRoundTripAndArchitecturesHaveOneName) {
    ModuleRequest r = request_for("6.1.0-28-amd64");
    const auto parsed = parse_key(r.key());
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->key(), r.key());
    EXPECT_EQ(r.key(), "debian/x86_64/1.0.0/6.1.0-28-amd64/1/" + kSha);
    EXPECT_EQ(parse_key("debian/amd64/1.0.0/6.1.0-28-amd64/1/" + kSha)->arch, "x86_64");
    EXPECT_FALSE(parse_key("debian/x86_64/1.0.0/6.1.0-28-amd64/1/" + kSha + "/x"));
    EXPECT_FALSE(parse_key("debian/x86_64/1.0.0/../1/" + kSha));
    EXPECT_FALSE(parse_key(""));
    EXPECT_EQ(plugin_arch("x86_64"), "amd64");
    EXPECT_EQ(plugin_arch("aarch64"), "arm64");
}

TEST(ServiceFields, Base64IsStrict) {
    EXPECT_EQ(decode_base64(""), "");
    EXPECT_EQ(decode_base64("Zg=="), "f");
    EXPECT_EQ(decode_base64("Zm8="), "fo");
    EXPECT_EQ(decode_base64("Zm9v"), "foo");
    EXPECT_EQ(decode_base64("Q09ORklHX1g9eQo="), "CONFIG_X=y\n");
    EXPECT_EQ(decode_base64("AP8A"), std::string("\0\xff\0", 3));
    for (const char* bad :
         {"Zg", "Zg=", "Z===", "Zm9v\n", "Zm 9v", "Zm9v====", "Zg==Zg==", "Zh==", "Zm9=", "!!!!", "Zm8=Zm9v"})
        EXPECT_FALSE(decode_base64(bad)) << bad;
}

TEST(BuildQueue, IdenticalConcurrentRequestsShareOneBuild) {
    test::TempDir out;
    FakeBuilds builds(out.path());
    builds.close_gate();
    BuildQueue queue({out.path(), 2, 8}, builds.runner());
    queue.start();
    const ModuleRequest r = request_for("6.1.0-28-amd64");
    std::vector<std::thread> clients;
    std::atomic<int> pending{0};
    for (int i = 0; i < 64; ++i)
        clients.emplace_back([&] { pending += queue.submit(r, "hello").answer == BuildQueue::Answer::pending; });
    for (auto& c : clients) c.join();
    EXPECT_EQ(pending, 64);
    ASSERT_TRUE(builds.wait_started(1));
    EXPECT_EQ(queue.find(r.key())->status, TargetStatus::building);
    EXPECT_EQ(queue.metrics().building, 1u);
    builds.open_gate();
    const TargetState done = wait_done(queue, r.key());
    EXPECT_EQ(done.status, TargetStatus::built);
    EXPECT_EQ(builds.calls, 1);

    const auto again = queue.submit(r, "hello");
    EXPECT_EQ(again.answer, BuildQueue::Answer::built);
    ASSERT_EQ(again.state.artifacts.size(), 1u);
    EXPECT_EQ(again.state.artifacts[0].name, "hello.ko");
    EXPECT_EQ(builds.calls, 1);
    const QueueMetrics m = queue.metrics();
    EXPECT_EQ(m.builds_done, 1u);
    EXPECT_EQ(m.built, 1u);
    EXPECT_DOUBLE_EQ(m.mean_build_s, 0.5);
}

TEST(BuildQueue, AFullQueueRefusesNewTargetsButAnswersKnownOnes) {
    test::TempDir out;
    FakeBuilds builds(out.path());
    builds.close_gate();
    BuildQueue queue({out.path(), 1, 2}, builds.runner());
    queue.start();
    EXPECT_EQ(queue.submit(request_for("6.1.0-1-amd64"), "hello").answer, BuildQueue::Answer::pending);
    ASSERT_TRUE(builds.wait_started(1));  // building: no longer counts as waiting
    EXPECT_EQ(queue.submit(request_for("6.1.0-2-amd64"), "hello").answer, BuildQueue::Answer::pending);
    EXPECT_EQ(queue.submit(request_for("6.1.0-3-amd64"), "hello").answer, BuildQueue::Answer::pending);
    EXPECT_EQ(queue.submit(request_for("6.1.0-4-amd64"), "hello").answer, BuildQueue::Answer::queue_full);
    EXPECT_FALSE(queue.find(request_for("6.1.0-4-amd64").key()));
    EXPECT_EQ(queue.submit(request_for("6.1.0-3-amd64"), "hello").answer, BuildQueue::Answer::pending);
    EXPECT_EQ(queue.metrics().queued, 2u);
    builds.open_gate();
    for (const char* r : {"6.1.0-1-amd64", "6.1.0-2-amd64", "6.1.0-3-amd64"})
        EXPECT_EQ(wait_done(queue, request_for(r).key()).status, TargetStatus::built);
    EXPECT_EQ(builds.order,
              (std::vector<std::string>{request_for("6.1.0-1-amd64").key(), request_for("6.1.0-2-amd64").key(),
                                        request_for("6.1.0-3-amd64").key()}));
}

TEST(BuildQueue, AFailureIsAnsweredWithItsReasonAndTriedAgainOnlyLater) {
    test::TempDir out;
    FakeBuilds builds(out.path());
    builds.fail = true;
    const ModuleRequest r = request_for("6.1.0-28-amd64");
    {
        BuildQueue queue({out.path(), 1, 8, std::chrono::seconds(3600)}, builds.runner());
        queue.start();
        queue.submit(r, "hello");
        const TargetState failed = wait_done(queue, r.key());
        EXPECT_EQ(failed.status, TargetStatus::failed);
        const auto answer = queue.submit(r, "hello");
        EXPECT_EQ(answer.answer, BuildQueue::Answer::failed);
        EXPECT_EQ(answer.state.reason, "hello.c:3: error: expected ';'");
        EXPECT_EQ(answer.state.log, "logs/6.1.0-28-amd64.log");
        EXPECT_EQ(builds.calls, 1);
        EXPECT_EQ(queue.metrics().builds_failed, 1u);
    }
    // The same state, read by a queue that retries failures at once: it forgets this one.
    builds.fail = false;
    BuildQueue queue({out.path(), 1, 8, std::chrono::seconds(0)}, builds.runner());
    EXPECT_FALSE(queue.find(r.key()));
    EXPECT_EQ(queue.metrics().forgotten, 1u);
    queue.start();
    EXPECT_EQ(queue.submit(r, "hello").answer, BuildQueue::Answer::pending);
    EXPECT_EQ(wait_done(queue, r.key()).status, TargetStatus::built);
    EXPECT_EQ(builds.calls, 2);
}

// Lines of service.json that hold a target.
int targets_in(const fs::path& state) {
    std::ifstream in(state);
    int n = 0;
    for (std::string line; std::getline(in, line);) n += line.rfind("{\"arch\"", 0) == 0;
    return n;
}

TEST(BuildQueue, FailuresAreRememberedForABoundedCount) {
    test::TempDir out;
    FakeBuilds builds(out.path());
    builds.fail = true;
    QueueOptions options{out.path(), 1, 8, std::chrono::seconds(3600)};
    options.max_failed = 3;
    BuildQueue queue(options, builds.runner());
    queue.start();
    std::vector<std::string> keys;
    for (int i = 0; i < 5; ++i) {
        const ModuleRequest r = request_for("6.1.0-" + std::to_string(20 + i) + "-amd64");
        queue.submit(r, "hello");
        EXPECT_EQ(wait_done(queue, r.key()).status, TargetStatus::failed);
        keys.push_back(r.key());
    }
    // The oldest two are forgotten: asked again, they are built again (and fail again here).
    EXPECT_FALSE(queue.find(keys[0]));
    EXPECT_FALSE(queue.find(keys[1]));
    for (int i = 2; i < 5; ++i) EXPECT_EQ(queue.find(keys[i])->status, TargetStatus::failed) << keys[i];
    const QueueMetrics m = queue.metrics();
    EXPECT_EQ(m.failed, 3u);
    EXPECT_EQ(m.forgotten, 2u);
    EXPECT_EQ(m.builds_failed, 5u);
    EXPECT_EQ(targets_in(queue.state_path()), 3);
    EXPECT_EQ(queue.submit(request_for("6.1.0-20-amd64"), "hello").answer, BuildQueue::Answer::pending);
}

// What a week of nodes asking for kernels nobody has left behind: 20,000 failures, most of
// them old. The next start forgets those and rewrites the file without them.
TEST(BuildQueue, ALargeStateFileIsReadAndCompacted) {
    test::TempDir out;
    const std::int64_t now = std::time(nullptr);
    {
        std::ofstream state(out / "service.json");
        state << "{\"schema\": 1, \"targets\": [\n";
        for (int i = 0; i < 20000; ++i) {
            const ModuleRequest r = request_for("6.1.0-" + std::to_string(i) + "-amd64");
            Json target = {{"key", r.key()},
                           {"module", "hello"},
                           {"status", "failed"},
                           {"reason", "debian: no kernel " + r.kernelrelease + " (x86_64) in the crawl"},
                           {"finished_epoch", i < 19000 ? now - 7200 : now - 60}};
            state << (i ? ",\n" : "") << target.dump();
        }
        state << "\n]}\n";
    }
    FakeBuilds builds(out.path());
    QueueOptions options{out.path(), 1, 8, std::chrono::seconds(3600)};
    options.max_failed = 500;
    BuildQueue queue(options, builds.runner());
    // 19,000 too old, then 500 of the 1,000 recent ones beyond the count: the oldest (by their
    // time, then their key) go.
    EXPECT_EQ(queue.metrics().forgotten, 19500u);
    EXPECT_EQ(queue.metrics().failed, 500u);
    EXPECT_FALSE(queue.find(request_for("6.1.0-42-amd64").key()));
    EXPECT_EQ(targets_in(queue.state_path()), 500);
    // And what it kept is what it answers.
    std::size_t kept = 0;
    for (int i = 19000; i < 20000; ++i)
        kept += queue.find(request_for("6.1.0-" + std::to_string(i) + "-amd64").key()).has_value();
    EXPECT_EQ(kept, 500u);
}

TEST(BuildQueue, ATamperedArtifactIsRebuiltNotServed) {
    test::TempDir out;
    FakeBuilds builds(out.path());
    BuildQueue queue({out.path(), 1, 8}, builds.runner());
    queue.start();
    const ModuleRequest r = request_for("6.1.0-28-amd64");
    queue.submit(r, "hello");
    wait_done(queue, r.key());

    auto lookup = queue.open_artifact(r.key(), "hello.ko");
    ASSERT_EQ(lookup.answer, BuildQueue::Answer::built);
    ASSERT_GE(lookup.file.fd, 0);
    std::string bytes(lookup.file.size, '\0');
    ASSERT_EQ(::pread(lookup.file.fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    EXPECT_EQ(bytes, "module for " + r.key());
    EXPECT_FALSE(queue.open_artifact(r.key(), "other.ko").answer);
    EXPECT_FALSE(queue.open_artifact(request_for("6.1.0-29-amd64").key(), "hello.ko").answer);

    // Same size, other bytes, written in place: the ctime changes, the file is checked again.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    {
        std::fstream file(out / "6.1.0-28-amd64.ko", std::ios::in | std::ios::out | std::ios::binary);
        file.seekp(0);
        file << "M";
    }
    const auto tampered = queue.open_artifact(r.key(), "hello.ko");
    EXPECT_EQ(tampered.answer, BuildQueue::Answer::pending);
    EXPECT_LT(tampered.file.fd, 0);
    EXPECT_NE(tampered.state.reason.find("no longer matches its sha256"), std::string::npos) << tampered.state.reason;
    EXPECT_EQ(wait_done(queue, r.key()).status, TargetStatus::built);
    EXPECT_EQ(builds.calls, 2);
    EXPECT_EQ(queue.open_artifact(r.key(), "hello.ko").answer, BuildQueue::Answer::built);

    // Removed: a POST finds it out as well.
    fs::remove(out / "6.1.0-28-amd64.ko");
    EXPECT_EQ(queue.submit(r, "hello").answer, BuildQueue::Answer::pending);
    EXPECT_EQ(wait_done(queue, r.key()).status, TargetStatus::built);
    EXPECT_EQ(builds.calls, 3);
}

TEST(BuildQueue, ARestartQueuesAgainWhatWasQueuedOrBuilding) {
    test::TempDir out, snapshot;
    FakeBuilds builds(out.path());
    builds.close_gate();
    const ModuleRequest a = request_for("6.1.0-1-amd64"), b = request_for("6.1.0-2-amd64"),
                        c = request_for("6.1.0-3-amd64");
    {
        BuildQueue queue({out.path(), 1, 8}, builds.runner());
        queue.start();
        queue.submit(a, "hello");
        ASSERT_TRUE(builds.wait_started(1));
        queue.submit(b, "hello");
        queue.submit(c, "hello");
        // What a process killed now leaves behind.
        fs::copy_file(out / "service.json", snapshot / "service.json");
        EXPECT_FALSE(queue.drain(std::chrono::milliseconds(50)));  // a is still building
        EXPECT_EQ(queue.submit(request_for("6.1.0-4-amd64"), "hello").answer, BuildQueue::Answer::shutting_down);
        builds.open_gate();
        EXPECT_TRUE(queue.drain(std::chrono::seconds(10)));
        EXPECT_EQ(builds.calls, 1);  // draining starts nothing new
    }
    const Json saved = state_file(out.path());
    std::map<std::string, std::string> status;
    for (const auto& t : saved["targets"]) status[t["key"]] = t["status"];
    EXPECT_EQ(status[a.key()], "built");
    EXPECT_EQ(status[b.key()], "queued");

    // The killed process's state: a building, b and c queued.
    {
        const Json killed = state_file(snapshot.path());
        for (const auto& t : killed["targets"]) {
            if (t["key"] == a.key()) {
                EXPECT_EQ(t["status"], "building");
            }
        }
    }
    FakeBuilds again(snapshot.path());
    BuildQueue queue({snapshot.path(), 1, 8}, again.runner());
    const auto interrupted = queue.find(a.key());
    ASSERT_TRUE(interrupted);
    EXPECT_EQ(interrupted->status, TargetStatus::queued);
    EXPECT_EQ(interrupted->reason, "queued again: the service stopped during its build");
    EXPECT_EQ(queue.open_artifact(a.key(), "hello.ko").answer, BuildQueue::Answer::pending);
    EXPECT_EQ(queue.metrics().queued, 3u);
    queue.start();
    for (const auto& r : {a, b, c}) EXPECT_EQ(wait_done(queue, r.key()).status, TargetStatus::built);
    EXPECT_EQ(again.order, (std::vector<std::string>{a.key(), b.key(), c.key()}));
}

TEST(BuildQueue, AStateFileThatIsNotOneIsRefusedAndBadTargetsAreDropped) {
    test::TempDir out;
    test::write_file(out / "service.json", "{\"targets\": 3}");
    EXPECT_THROW(BuildQueue({out.path()}, {}), Error);
    const ModuleRequest r = request_for("6.1.0-28-amd64");
    Json doc = {{"schema", 1},
                {"targets",
                 {{{"key", "debian/x86_64/1.0.0/../1/" + kSha}, {"status", "built"}, {"module", "hello"}},
                  {{"key", r.key()},
                   {"status", "built"},
                   {"module", "hello"},
                   {"artifacts", {{{"name", "hello.ko"}, {"path", "../../etc/passwd"}, {"sha256", kSha}}}}},
                  {{"key", request_for("6.1.0-29-amd64").key()}, {"status", "queued"}, {"module", "hello"}}}}};
    test::write_file(out / "service.json", doc.dump());
    BuildQueue queue({out.path()}, {});
    EXPECT_FALSE(queue.find(r.key()));
    EXPECT_EQ(queue.metrics().queued, 1u);
}
