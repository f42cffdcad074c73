// <out>/index.json and its journal as a user sees them: every record put is found again, by
// the next Index and by read_index, after a run of 10,000 targets and after a kill -9 at any
// moment; index.json is valid JSON whenever it is read; a put at 10,000 records does not
// rewrite index.json.
#include "output/artifacts.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

// Target n, built: one artifact named after its kernel.
TargetRecord record(size_t n, const std::string& inputs = "first") {
    TargetRecord t{"debian", "amd64", "6.1.0-" + std::to_string(n) + "-amd64", "1", "hello"};
    t.status = TargetStatus::built;
    t.inputs = inputs;
    t.artifacts = {{"hello-" + t.kernelrelease + ".ko", "sha-" + std::to_string(n), t.kernelrelease + " SMP"}};
    return t;
}

// index.json as any JSON reader sees it (a parse error fails the test): its targets.
Json targets_in(const fs::path& index) {
    const Json doc = Json::parse(test::read_file(index));
    EXPECT_TRUE(doc.is_object() && doc["targets"].is_array()) << index;
    return doc["targets"];
}

std::set<std::string> releases_of(const std::vector<TargetRecord>& records) {
    std::set<std::string> releases;
    for (const auto& r : records) releases.insert(r.kernelrelease);
    return releases;
}

std::multiset<std::string> inputs_of(const std::vector<TargetRecord>& records) {
    std::multiset<std::string> inputs;
    for (const auto& r : records) inputs.insert(r.inputs);
    return inputs;
}

// Which file index.json is, and when it was last written.
std::pair<ino_t, timespec> identity(const fs::path& file) {
    struct stat st {};
    EXPECT_EQ(::stat(file.c_str(), &st), 0) << file;
    return {st.st_ino, st.st_mtim};
}

bool same(const std::pair<ino_t, timespec>& a, const std::pair<ino_t, timespec>& b) {
    return a.first == b.first && a.second.tv_sec == b.second.tv_sec && a.second.tv_nsec == b.second.tv_nsec;
}

// What is logged while `run` runs.
std::string logged(const std::function<void()>& run) {
    std::ostringstream text;
    const auto previous = spdlog::default_logger();
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("index_test", std::make_shared<spdlog::sinks::ostream_sink_mt>(text)));
    try {
        run();
    } catch (...) {
        spdlog::set_default_logger(previous);
        throw;
    }
    spdlog::set_default_logger(previous);
    return text.str();
}

}  // namespace

TEST(Index, TenThousandRecordsAreAllFoundAgain) {
    test::TempDir dir;
    const fs::path out = dir / "out";
    {
        Index index(out);
        for (size_t n = 0; n < 10000; ++n) index.put(record(n));
        // While the run goes on, a reader of index.json (kbuild index merge) sees every record.
        EXPECT_EQ(read_index(index.path()).size(), 10000u);
    }
    EXPECT_FALSE(fs::exists(out / "index.json.journal"));
    const Index again(out);
    for (size_t n = 0; n < 10000; ++n) {
        const auto found = again.find(record(n));
        ASSERT_TRUE(found) << n;
        EXPECT_EQ(Json(*found), Json(record(n)));
    }
    // The file itself: every record, sorted by target, as before the journal.
    const Json targets = targets_in(out / "index.json");
    EXPECT_EQ(targets.size(), 10000u);
    EXPECT_EQ(targets, Json(again.records()));
    const Json whole = {{"schema", kSchema}, {"targets", again.records()}};
    EXPECT_EQ(test::read_file(out / "index.json"), whole.dump(2) + "\n");
}

// A run killed with SIGKILL at three moments (the child reports each put that returned): each
// time index.json is valid JSON and the next Index, and read_index, hold every reported record.
TEST(Index, AKilledRunKeepsEveryRecordItReported) {
    test::TempDir dir;
    const fs::path out = dir / "out";
    std::set<std::string> done;
    size_t round = 0;
    for (const size_t kill_after : {300u, 1500u, 4000u}) {
        int pipe_fds[2];
        ASSERT_EQ(::pipe(pipe_fds), 0);
        const size_t first = ++round * 100000;
        const pid_t child = ::fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            ::close(pipe_fds[0]);
            try {
                Index index(out);
                for (size_t n = first;; ++n) {
                    index.put(record(n));
                    const size_t count = n - first + 1;
                    if (::write(pipe_fds[1], &count, sizeof count) != sizeof count) ::_exit(2);
                }
            } catch (...) {
                ::_exit(1);
            }
        }
        ::close(pipe_fds[1]);
        size_t count = 0, reported = 0;
        bool killed = false;
        while (::read(pipe_fds[0], &count, sizeof count) == sizeof count) {
            reported = count;
            if (!killed && reported >= kill_after) {
                ::kill(child, SIGKILL);
                killed = true;
            }
        }
        ::close(pipe_fds[0]);
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child ended by itself: " << status;
        ASSERT_GE(reported, kill_after);
        for (size_t n = first; n < first + reported; ++n) done.insert(record(n).kernelrelease);

        const Json targets = targets_in(out / "index.json");  // valid JSON, whatever the moment
        EXPECT_FALSE(targets.empty());
        const auto read = releases_of(read_index(out / "index.json"));
        EXPECT_TRUE(std::includes(read.begin(), read.end(), done.begin(), done.end())) << "round " << round;
        const auto held = releases_of(Index(out).records());
        EXPECT_TRUE(std::includes(held.begin(), held.end(), done.begin(), done.end())) << "round " << round;
        EXPECT_FALSE(fs::exists(out / "index.json.journal"));  // the Index folded it in
    }
}

// A journal's last line cut short by a kill (no newline, or not JSON) is left out with a
// warning naming the journal; the lines before it are kept.
TEST(Index, ATornLastJournalLineIsLeftOutAndTheOthersKept) {
    const std::string whole = Json(record(3)).dump();
    for (const std::string& torn : {whole.substr(0, whole.size() / 2), whole.substr(0, 20) + "\n", whole}) {
        test::TempDir dir;
        const fs::path out = dir / "out";
        Index(out).put(record(0));
        test::write_file(out / "index.json.journal", Json(record(1)).dump() + "\n" + Json(record(2, "second")).dump() +
                                                         "\n" + Json(record(1, "again")).dump() + "\n" + torn);
        std::vector<TargetRecord> read;
        const std::string warning = logged([&] { read = read_index(out / "index.json"); });
        EXPECT_NE(warning.find((out / "index.json.journal").string() + ": line 4 is torn"), std::string::npos)
            << warning;
        ASSERT_EQ(read.size(), 3u);
        EXPECT_EQ(read[1].inputs, "again");  // the last line of a target wins
        EXPECT_EQ(read[2].inputs, "second");

        std::optional<Index> index;
        EXPECT_NE(logged([&] { index.emplace(out); }).find("line 4 is torn"), std::string::npos);
        EXPECT_EQ(releases_of(index->records()), releases_of({record(0), record(1), record(2)}));
        EXPECT_FALSE(index->find(record(3)));
        EXPECT_FALSE(fs::exists(out / "index.json.journal"));
        EXPECT_EQ(targets_in(out / "index.json").size(), 3u);
    }
}

// A line before the last that is not a record was not torn by a kill: refused, naming the
// file and the line.
TEST(Index, ASpoiledJournalLineBeforeTheLastIsAnError) {
    test::TempDir dir;
    const fs::path out = dir / "out";
    Index(out).put(record(0));
    const fs::path journal = out / "index.json.journal";
    test::write_file(journal, "{\"distro\": \n" + Json(record(1)).dump() + "\n");
    const std::string error = test::error_of([&] { read_index(out / "index.json"); });
    EXPECT_EQ(error.rfind(journal.string() + ": line 1: not a kbuild index record: ", 0), 0u) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    const std::string refused = test::error_of([&] { Index index(out); });
    EXPECT_EQ(refused.rfind(journal.string() + ": line 1: ", 0), 0u) << refused;
    EXPECT_NE(refused.find("(move it away to start a new one)"), std::string::npos) << refused;
}

TEST(Index, HoldersFindWhoHoldsAnArtifactAndFollowReplacements) {
    test::TempDir dir;
    const std::string path = record(1).artifacts[0].path;
    Index index(dir / "out");
    EXPECT_TRUE(index.holders(path).empty());
    index.put(record(1));
    ASSERT_EQ(index.holders(path).size(), 1u);
    EXPECT_EQ(index.holders(path)[0].kernelrelease, record(1).kernelrelease);

    // Target 1 rebuilt under another name: the old name is no one's.
    TargetRecord renamed = record(1, "renamed");
    renamed.artifacts[0].path = "renamed.ko";
    index.put(renamed);
    EXPECT_TRUE(index.holders(path).empty());
    ASSERT_EQ(index.holders("renamed.ko").size(), 1u);
    EXPECT_EQ(index.holders("renamed.ko")[0].inputs, "renamed");

    // Target 2 takes the name; then target 1 fails and holds nothing.
    TargetRecord taker = record(2);
    taker.artifacts[0].path = "renamed.ko";
    index.put(taker);
    TargetRecord failed = record(1);
    failed.status = TargetStatus::failed;
    failed.artifacts.clear();
    index.put(failed);
    ASSERT_EQ(index.holders("renamed.ko").size(), 1u);
    EXPECT_EQ(index.holders("renamed.ko")[0].kernelrelease, record(2).kernelrelease);

    // Two records claiming one file are both named, sorted by target.
    TargetRecord claimant = record(0);
    claimant.artifacts[0].path = "renamed.ko";
    index.put(claimant);
    const auto both = index.holders("renamed.ko");
    ASSERT_EQ(both.size(), 2u);
    EXPECT_EQ(both[0].kernelrelease, record(0).kernelrelease);
    EXPECT_EQ(both[1].kernelrelease, record(2).kernelrelease);

    // The next Index knows the same from the files.
    index.flush();
    EXPECT_EQ(Index(dir / "out").holders("renamed.ko").size(), 2u);
    EXPECT_TRUE(Index(dir / "out").holders(path).empty());
}

// The cost of a put, without timing it: at 10,000 records, puts go to the journal and leave
// index.json alone until the journal passes records / 4 lines; then one rewrite.
TEST(Index, APutAtTenThousandRecordsDoesNotRewriteIndexJson) {
    test::TempDir dir;
    Index index(dir / "out");
    for (size_t n = 0; n < 10000; ++n) index.put(record(n));
    index.flush();
    const fs::path file = index.path();
    const auto before = identity(file);
    const std::string text = test::read_file(file);
    for (size_t n = 0; n < 10000 / 4; ++n) index.put(record(n, "again"));
    EXPECT_TRUE(same(identity(file), before)) << "index.json was rewritten";
    EXPECT_EQ(test::read_file(file), text);
    EXPECT_EQ(inputs_of(read_index(file)).count("again"), 10000u / 4);  // the journal holds them
    index.put(record(10000 / 4, "again"));
    EXPECT_FALSE(same(identity(file), before)) << "the journal grew past a quarter of the records";
    EXPECT_FALSE(fs::exists(file.string() + ".journal"));
    EXPECT_EQ(inputs_of(targets_in(file).get<std::vector<TargetRecord>>()).count("again"), 10000u / 4 + 1);
}
