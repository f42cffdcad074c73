#include "test_util.h"
#include "util/process.h"

#include <kbuild/digest.hpp>
#include <kbuild/rpm.hpp>
#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

int sign(int value) {
    return (value > 0) - (value < 0);
}

ProcessResult run_checked(const std::vector<std::string>& argv) {
    ProcessResult r = run_process(argv);
    if (r.exit_code != 0) {
        std::string command;
        for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
        throw Error(command + ": exit " + std::to_string(r.exit_code) + ": " + r.err);
    }
    return r;
}

// The message of the kbuild::Error f throws; "" (and a failure) when it throws none.
template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
}

// One line naming the file and saying why.
void expect_error_line(const std::string& message, const std::string& path, const std::string& cause) {
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(cause), std::string::npos) << message << "\nexpected: " << cause;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

fs::path fixture_dir() {
    return test::source_dir() / "tests/fixtures/rpm-data";
}

const std::string kKernelDevel = "kernel-devel-5.14.0-284.11.1.el9_2.x86_64.rpm";
const std::string kTools = "kbuild-fixture-tools-1.0^20240101git1f2e3d-3.fc40.noarch.rpm";
const std::string kToolsSource = "kbuild-fixture-tools-1.0^20240101git1f2e3d-3.fc40.src.rpm";
const std::vector<std::string> kFixtureRpms = {kKernelDevel, kTools, kToolsSource};

// ---- versions, against rpm itself ----

// Segment strings (one version or release): separators, '~', '^', letters against digits,
// leading zeros, numbers longer than any integer type.
const Pairs kSegmentPairs = {
    {"1.0", "1.0"},
    {"1.0", "1.0.0"},
    {"1.0", "1.1"},
    {"1.0", "1_0"},
    {"1.0", "1..0"},
    {"1.0", "1+0"},
    {"1.0-1", "1.0.1"},
    {"1.0.", "1.0"},
    {"1.0a", "1.0"},
    {"1.0a", "1.0.1"},
    {"1.0a", "1.0b"},
    {"1.0A", "1.0a"},
    {"1.0", "1.0a"},
    {"a", "1"},
    {"a", "b"},
    {"abc", "abd"},
    {"abc", "ab"},
    {"2.0.1a", "2.0.1"},
    {"5.5p1", "5.5p2"},
    {"5.5p10", "5.5p2"},
    {"10xyz", "10.1xyz"},
    {"xyz10", "xyz10.1"},
    {"xyz.4", "8"},
    {"xyz.4", "2"},
    {"1.0~rc1", "1.0"},
    {"1.0~rc1", "1.0~rc2"},
    {"1.0~rc1~git123", "1.0~rc1"},
    {"1.0~", "1.0"},
    {"1.0~~", "1.0~"},
    {"1~", "1"},
    {"~", ""},
    {"1.0^", "1.0"},
    {"1.0^git1", "1.0"},
    {"1.0^git1", "1.0^git2"},
    {"1.0^git1", "1.0.1"},
    {"1.0^git1", "1.01"},
    {"1.0^20160101", "1.0.1"},
    {"1.0^20160101^git1", "1.0^20160101"},
    {"1.0^20160102", "1.0^20160101^git1"},
    {"1.0~rc1^git1", "1.0~rc1"},
    {"1.0^git1~pre", "1.0^git1"},
    {"1.0^", "1.0~"},
    {"^", ""},
    {"^", "~"},
    {"01", "1"},
    {"001", "01"},
    {"1.01", "1.1"},
    {"1.010", "1.9"},
    {"1.002", "1.1"},
    {"0", "00"},
    {"0.1", "0.01"},
    {"999999999999999999999", "1000000000000000000000"},
    {"18446744073709551616", "18446744073709551615"},
    {"el7", "el7_9"},
    {"el8_4", "el8_10"},
    {"el8_10", "el9"},
    {"el7uek", "el7"},
    {"fc39", "fc40"},
    {"amzn2", "amzn2023"},
    {"1160.80.1.el7", "1160.81.1.el7"},
    {"284.11.1.el9_2", "284.11.1.rt14.296.el9_2"},
    {"", "1"},
    {"", ""},
};

// "[epoch:]version[-release]" pairs: real kernel EVRs as the kernel-packer lists name them (el7,
// el8, el9, rt, uek, amzn2, fc), the forms of amzn1 and amzn2023, then epochs, '~', '^',
// leading zeros, letters and missing releases.
const Pairs kEvrPairs = {
    // el7
    {"3.10.0-1160.80.1.el7", "3.10.0-1160.81.1.el7"},
    {"3.10.0-1160.99.1.el7", "3.10.0-1160.102.1.el7"},
    {"3.10.0-1160.el7", "3.10.0-1160.2.1.el7"},
    {"3.10.0-957.el7", "3.10.0-1062.el7"},
    {"3.10.0-957.12.2.el7", "3.10.0-957.12.1.el7"},
    {"3.10.0-693.21.1.el7", "3.10.0-693.5.2.el7"},
    {"3.10.0-327.36.2.el7", "3.10.0-693.el7"},
    {"4.9.48-29.el7", "3.10.0-1160.99.1.el7"},
    {"3.10.0-1160.83.1.el7", "3.10.0-1160.83.1.el7"},
    // el8, el9, rt
    {"4.18.0-305.10.2.el8_4", "4.18.0-305.3.1.el8_4"},
    {"4.18.0-80.el8", "4.18.0-80.11.2.el8_0"},
    {"4.18.0-80.7.1.el8_0", "4.18.0-80.7.2.el8_0"},
    {"4.18.0-477.15.1.el8_8", "4.18.0-425.19.2.el8_7"},
    {"4.18.0-513.11.1.el8_9", "4.18.0-513.18.1.el8_9"},
    {"4.18.0-305.100.1.el8_4", "4.18.0-305.99.1.el8_4"},
    {"4.18.0-305.100.1.rt7.175.el8_4", "4.18.0-305.100.1.el8_4"},
    {"4.18.0-372.82.1.rt7.241.el8_6", "4.18.0-372.85.1.rt7.245.el8_6"},
    {"4.18.0-372.41.1.rt7.198.el8_6", "4.18.0-372.41.1.el8_6"},
    {"5.14.0-284.13.1.el9_2", "5.14.0-284.16.1.el9_2"},
    {"5.14.0-284.13.1.rt14.298.el9_2", "5.14.0-284.13.1.el9_2"},
    {"5.14.0-284.16.1.rt14.301.el9_2", "5.14.0-284.13.1.rt14.298.el9_2"},
    {"5.14.0-362.8.1.el9_3", "5.14.0-284.30.1.el9_2"},
    {"4.18.0-553.el8_10", "4.18.0-513.24.1.el8_9"},
    // Oracle UEK
    {"4.14.35-1912.el7uek", "4.14.35-1917.el7uek"},
    {"4.14.35-2047.519.1.el7uek", "4.14.35-2047.520.0.el7uek"},
    {"4.14.35-1902.305.0.el7uek", "4.14.35-1902.7.0.el7uek"},
    {"5.4.17-2136.317.5.3.el7uek", "5.4.17-2136.317.5.el7uek"},
    {"5.4.17-2136.317.5.3.el7uek", "4.14.35-2047.528.1.el7uek"},
    // Amazon Linux 1, 2, 2023
    {"4.14.181-140.257.amzn2", "4.14.231-173.360.amzn2"},
    {"4.14.241-184.433.amzn2", "4.14.243-185.433.amzn2"},
    {"4.9.85-46.56.amzn2", "4.9.85-47.59.amzn2"},
    {"5.10.29-27.128.amzn2", "5.10.29-27.126.amzn2"},
    {"5.10.217-205.860.amzn2", "5.10.218-206.860.amzn2"},
    {"5.4.95-42.163.amzn2", "5.4.250-166.369.amzn2"},
    {"4.14.262-135.489.amzn1", "4.14.262-135.486.amzn1"},
    {"4.14.262-135.489.amzn1", "4.14.262-135.489.amzn2"},
    {"6.1.102-111.182.amzn2023", "6.1.97-104.177.amzn2023"},
    {"6.1.102-111.182.amzn2023", "6.1.102-111.182.amzn2"},
    // Fedora
    {"6.6.2-201.fc39", "6.5.8-200.fc38"},
    {"5.11.15-300.fc34", "5.11.15-200.fc33"},
    {"5.11.15-100.fc32", "5.11.14-100.fc32"},
    {"6.9.1-200.fc40", "6.9.1-200.fc39"},
    {"6.8.0-0.rc6.49.fc41", "6.8.0-1.fc41"},
    {"6.10.0-0.rc1.20240528git2bfcfd584ff5.17.fc41", "6.10.0-0.rc1.17.fc41"},
    // epochs: numeric, missing = 0, leading zeros, empty
    {"1:1.0-1", "1.0-1"},
    {"1:1.0-1", "2.0-1"},
    {"0:1.0-1", "1.0-1"},
    {"00:1.0-1", "0:1.0-1"},
    {"2:1.0-1", "10:0.1-1"},
    {"10:1.0", "9:2.0"},
    {"1:1.0", "01:1.0"},
    {":1.0-1", "0:1.0-1"},
    {"3:4.18.0-80.el8", "4.18.0-553.el8_10"},
    {"2:1.0^20240101git1f2e3d-3.fc40", "2:1.0-3.fc40"},
    {"a:1.0-1", "1.0-1"},
    // '~' and '^' in versions and releases
    {"1.0~rc1-1", "1.0-1"},
    {"1.0~rc1-1", "1.0~rc2-1"},
    {"1.0-1~rc1", "1.0-1"},
    {"1.0^git1-1", "1.0-1"},
    {"1.0^git1-1", "1.0.1-1"},
    {"1.0-1^post1", "1.0-1"},
    {"1.0-1^post1", "1.0-2"},
    {"6.10.0~rc1-1", "6.9.12-200"},
    // leading zeros and letters
    {"1.01-1", "1.1-1"},
    {"1.0-01", "1.0-1"},
    {"1.0a-1", "1.0-1"},
    {"1.0-1a", "1.0-1"},
    {"2.4.9-1.el7", "2.4.10-1.el7"},
    {"1.1.1k-12.el8_9", "1.1.1w-1.el8"},
    // missing releases: older than any release, as rpm.vercmp orders them
    {"1.0", "1.0-1"},
    {"1.0", "1.0-0"},
    {"1.0", "1.0-"},
    {"1:1.0", "1:1.0-1"},
    {"1.0", "1.0"},
    {"5.14.0", "5.14.0-284.11.1.el9_2"},
    // several hyphens: the release follows the last
    {"1.0-rc1-1", "1.0-1"},
    {"1.0-rc1-2", "1.0-rc1-1"},
};

std::vector<std::string> read_lines(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw Error(path.string() + ": cannot open");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line[0] != '#') lines.push_back(line);
    return lines;
}

// The rpm-family kernel-packer lists (real package URLs) and the URLs of each.
const std::vector<std::string> kKernelLists = {
    "centos.txt",
    "rhel7.txt",
    "rhel76-eus.txt",
    "rhel8.txt",
    "rhel84-eus.txt",
    "rhel8-rhocp4.10.txt",
    "rhel8-rhocp4.11.txt",
    "rhel8-rhocp4.12.txt",
    "rhel9-rhocp4.13.txt",
    "rhel9-rhocp4.14.txt",
    "rhel.txt",
    "amazon.txt",
    "amazon-5.10.txt",
    "amazon-extras.txt",
    "oracle-uek.txt",
    "fedora-coreos.txt",
};

std::vector<std::string> kernel_list_urls() {
    std::vector<std::string> urls;
    for (const auto& list : kKernelLists) {
        const auto lines = read_lines(test::kernel_packer_lists() / list);
        urls.insert(urls.end(), lines.begin(), lines.end());
    }
    return urls;
}

// Pairs of the version-releases the lists hold, each distinct one (in list order) against the
// next one and the one 13 further on: neighbours are mostly close versions of one kernel line,
// the distant ones other lines and distros.
Pairs kernel_list_pairs() {
    std::vector<std::string> releases;
    std::set<std::string> seen;
    for (const auto& url : kernel_list_urls()) {
        const auto p = rpm::parse_file_name(url);
        if (p && seen.insert(p->version + "-" + p->release).second) releases.push_back(p->version + "-" + p->release);
    }
    Pairs pairs;
    for (std::size_t i = 0; i + 1 < releases.size(); ++i) {
        pairs.emplace_back(releases[i], releases[i + 1]);
        if (i + 13 < releases.size()) pairs.emplace_back(releases[i], releases[i + 13]);
    }
    return pairs;
}

// Asks rpm for every comparison at once: one `rpm --eval` running a Lua script over a file of
// queries. rpm.vercmp orders EVR strings (rpmverCmp), so a segment query (rpmvercmp over one
// string) is put to it as "0:<a>-0" against "0:<b>-0": an explicit epoch, so a ':' in the
// string cannot read as one, and a release, so every '-' in it stays in the version.
class RpmOracle {
public:
    enum Kind { kSegments, kEvr };

    std::size_t add(Kind kind, const std::string& a, const std::string& b) {
        queries_.push_back({kind, a, b});
        return queries_.size() - 1;
    }

    std::vector<int> run() const {
        test::TempDir dir;
        std::string text;
        for (const auto& q : queries_) text += (q.kind == kSegments ? "s\t" : "e\t") + q.a + "\t" + q.b + "\n";
        test::write_file(dir / "queries", text);
        test::write_file(dir / "vercmp.lua",
                         "for line in io.lines('" + (dir / "queries").string() +
                             "') do\n"
                             "  local kind, a, b = line:match('^(%a)\\t([^\\t]*)\\t([^\\t]*)$')\n"
                             "  if kind == 's' then a, b = '0:' .. a .. '-0', '0:' .. b .. '-0' end\n"
                             "  io.write(rpm.vercmp(a, b), '\\n')\n"
                             "end\n");
        const ProcessResult r =
            run_checked({"rpm", "--eval", "%{lua: dofile('" + (dir / "vercmp.lua").string() + "')}"});
        std::istringstream lines(r.out);
        std::vector<int> answers;
        for (int answer; lines >> answer;) answers.push_back(sign(answer));
        if (answers.size() != queries_.size())
            throw Error("rpm answered " + std::to_string(answers.size()) + " of " + std::to_string(queries_.size()) +
                        " comparisons: " + r.err);
        return answers;
    }

private:
    struct Query {
        Kind kind;
        std::string a, b;
    };
    std::vector<Query> queries_;
};

// rpm's answers for the tables, both ways round, and for the kernel-list pairs: asked once.
class RpmVersion : public ::testing::Test {
protected:
    struct Answered {
        std::string a, b;
        int ab = 0, ba = 0;  // rpm's sign for (a, b) and for (b, a)
    };

    static void SetUpTestSuite() {
        kernel_pairs_ = new Pairs(kernel_list_pairs());
        RpmOracle oracle;
        std::vector<std::size_t> index;
        const auto ask = [&](RpmOracle::Kind kind, const Pairs& pairs) {
            for (const auto& [a, b] : pairs) {
                index.push_back(oracle.add(kind, a, b));
                index.push_back(oracle.add(kind, b, a));
            }
        };
        ask(RpmOracle::kSegments, kSegmentPairs);
        ask(RpmOracle::kEvr, kEvrPairs);
        ask(RpmOracle::kEvr, *kernel_pairs_);
        const std::vector<int> answers = oracle.run();
        std::size_t next = 0;
        const auto collect = [&](const Pairs& pairs) {
            std::vector<Answered> out;
            for (const auto& [a, b] : pairs) {
                const int ab = answers[index[next++]];
                const int ba = answers[index[next++]];
                out.push_back({a, b, ab, ba});
            }
            return out;
        };
        segments_ = new std::vector<Answered>(collect(kSegmentPairs));
        evrs_ = new std::vector<Answered>(collect(kEvrPairs));
        kernels_ = new std::vector<Answered>(collect(*kernel_pairs_));
    }

    static void TearDownTestSuite() {
        delete segments_;
        delete evrs_;
        delete kernels_;
        delete kernel_pairs_;
    }

    // Answers both ways, so a constant (or one-sided) comparison cannot pass.
    static void expect_varied(const std::vector<Answered>& answered, int unequal, int equal) {
        int less = 0, same = 0, greater = 0;
        for (const auto& x : answered) less += x.ab<0, same += x.ab == 0, greater += x.ab> 0;
        EXPECT_GE(less, unequal);
        EXPECT_GE(greater, unequal);
        EXPECT_GE(same, equal);
    }

    static std::vector<Answered>* segments_;
    static std::vector<Answered>* evrs_;
    static std::vector<Answered>* kernels_;
    static Pairs* kernel_pairs_;
};

std::vector<RpmVersion::Answered>* RpmVersion::segments_ = nullptr;
std::vector<RpmVersion::Answered>* RpmVersion::evrs_ = nullptr;
std::vector<RpmVersion::Answered>* RpmVersion::kernels_ = nullptr;
Pairs* RpmVersion::kernel_pairs_ = nullptr;

TEST_F(RpmVersion, TablesAreLargeAndVaried) {
    EXPECT_GE(kSegmentPairs.size(), 50u);
    EXPECT_GE(kEvrPairs.size(), 70u);
    // Real kernel releases from the lists: well over the 100 pairs asked for.
    EXPECT_GE(kernels_->size(), 1000u);
    expect_varied(*segments_, 15, 5);
    expect_varied(*evrs_, 25, 5);
    expect_varied(*kernels_, 300, 0);  // distinct releases: never equal
}

TEST_F(RpmVersion, SegmentsOrderAsRpmvercmpDoes) {
    for (const auto& x : *segments_) {
        EXPECT_EQ(sign(rpm::compare_segments(x.a, x.b)), x.ab) << x.a << " vs " << x.b;
        EXPECT_EQ(sign(rpm::compare_segments(x.b, x.a)), x.ba) << x.b << " vs " << x.a;
    }
}

TEST_F(RpmVersion, EvrsOrderAsRpmDoes) {
    for (const auto& x : *evrs_) {
        EXPECT_EQ(sign(rpm::compare_evr(x.a, x.b)), x.ab) << x.a << " vs " << x.b;
        EXPECT_EQ(sign(rpm::compare_evr(x.b, x.a)), x.ba) << x.b << " vs " << x.a;
    }
}

TEST_F(RpmVersion, KernelListReleasesOrderAsRpmDoes) {
    int wrong = 0;
    for (const auto& x : *kernels_) {
        const int ab = sign(rpm::compare_evr(x.a, x.b)), ba = sign(rpm::compare_evr(x.b, x.a));
        EXPECT_EQ(ab, x.ab) << x.a << " vs " << x.b;
        EXPECT_EQ(ba, x.ba) << x.b << " vs " << x.a;
        wrong += ab != x.ab || ba != x.ba;
        if (wrong > 20) FAIL() << "more than 20 pairs ordered wrongly";
    }
}

// The rules, stated without rpm, so a reader sees what the tables check.
TEST(RpmVersionRules, ByExample) {
    EXPECT_LT(rpm::compare_segments("1.0~rc1", "1.0"), 0);     // '~' before the end
    EXPECT_LT(rpm::compare_segments("1.0", "1.0^git1"), 0);    // '^' after the end...
    EXPECT_LT(rpm::compare_segments("1.0^git1", "1.0.1"), 0);  // ...before anything else
    EXPECT_EQ(rpm::compare_segments("1.01", "1.1"), 0);        // leading zeros
    EXPECT_EQ(rpm::compare_segments("1.0", "1_0"), 0);         // separators only separate
    EXPECT_GT(rpm::compare_segments("1.0.1", "1.0a"), 0);      // digits beat letters
    EXPECT_GT(rpm::compare_segments("1160.81.1.el7", "1160.80.1.el7"), 0);
    EXPECT_GT(rpm::compare_evr("1:1.0", "2.0"), 0);      // epoch first
    EXPECT_EQ(rpm::compare_evr("0:1.0-1", "1.0-1"), 0);  // missing epoch is 0
    EXPECT_LT(rpm::compare_evr("1.0", "1.0-1"), 0);      // missing release is older
    EXPECT_GT(rpm::compare_evr("3.10.0-1160.el7", "3.10.0-957.27.2.el7"), 0);
}

TEST_F(RpmVersion, IsAntisymmetricAndReflexive) {
    for (const auto* table : {segments_, evrs_, kernels_}) {
        for (const auto& x : *table) {
            EXPECT_EQ(rpm::compare_evr(x.a, x.a), 0) << x.a;
            EXPECT_EQ(sign(rpm::compare_evr(x.a, x.b)), -sign(rpm::compare_evr(x.b, x.a))) << x.a << " vs " << x.b;
        }
    }
}

// ---- file names ----

TEST(RpmFileName, NevraOfPathsAndUrls) {
    const auto p = rpm::parse_file_name(
        "https://mirror.invalid/7/updates/x86_64/Packages/"
        "kernel-devel-3.10.0-1160.80.1.el7.x86_64.rpm");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->name, "kernel-devel");
    EXPECT_EQ(p->version, "3.10.0");
    EXPECT_EQ(p->release, "1160.80.1.el7");
    EXPECT_EQ(p->arch, "x86_64");
    EXPECT_EQ(p->epoch, "");
    EXPECT_EQ(p->size, -1);

    const auto local = rpm::parse_file_name("/var/tmp/kernel-devel-3.10.0-1160.80.1.el7.x86_64.rpm");
    ASSERT_TRUE(local);
    EXPECT_EQ(local->name, "kernel-devel");
    const auto bare = rpm::parse_file_name("kernel-devel-3.10.0-1160.80.1.el7.x86_64.rpm");
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->release, "1160.80.1.el7");
}

struct Nevra {
    std::string name, version, release, arch;
};

Nevra nevra_of(const std::string& file) {
    const auto p = rpm::parse_file_name(file);
    if (!p) return {"(nullopt)", "", "", ""};
    return {p->name, p->version, p->release, p->arch};
}

bool operator==(const Nevra& a, const Nevra& b) {
    return a.name == b.name && a.version == b.version && a.release == b.release && a.arch == b.arch;
}

std::ostream& operator<<(std::ostream& out, const Nevra& n) {
    return out << n.name << " | " << n.version << " | " << n.release << " | " << n.arch;
}

TEST(RpmFileName, NamesWithHyphensAndDigits) {
    EXPECT_EQ(nevra_of("kernel5.10-devel-5.10.50-44.132.amzn2.x86_64.rpm"),
              (Nevra{"kernel5.10-devel", "5.10.50", "44.132.amzn2", "x86_64"}));
    EXPECT_EQ(nevra_of("kernel-uek-devel-5.4.17-2136.317.5.3.el7uek.x86_64.rpm"),
              (Nevra{"kernel-uek-devel", "5.4.17", "2136.317.5.3.el7uek", "x86_64"}));
    EXPECT_EQ(nevra_of("kernel-ml-devel-6.9.7-1.el9.elrepo.x86_64.rpm"),
              (Nevra{"kernel-ml-devel", "6.9.7", "1.el9.elrepo", "x86_64"}));
    EXPECT_EQ(nevra_of("kernel-rt-devel-4.18.0-372.100.1.rt7.260.el8_6.x86_64.rpm"),
              (Nevra{"kernel-rt-devel", "4.18.0", "372.100.1.rt7.260.el8_6", "x86_64"}));
    EXPECT_EQ(nevra_of("kernel-64k-devel-5.14.0-427.13.1.el9_4.aarch64.rpm"),
              (Nevra{"kernel-64k-devel", "5.14.0", "427.13.1.el9_4", "aarch64"}));
    EXPECT_EQ(nevra_of("kernel-3.10.0-1160.el7.src.rpm"), (Nevra{"kernel", "3.10.0", "1160.el7", "src"}));
    EXPECT_EQ(nevra_of(kTools), (Nevra{"kbuild-fixture-tools", "1.0^20240101git1f2e3d", "3.fc40", "noarch"}));
}

TEST(RpmFileName, UrlEscapesAreDecoded) {
    EXPECT_EQ(nevra_of("https://mirror.invalid/Packages/"
                       "kbuild-fixture-tools-1.0%5E20240101git1f2e3d-3.fc40.noarch.rpm"),
              (Nevra{"kbuild-fixture-tools", "1.0^20240101git1f2e3d", "3.fc40", "noarch"}));
    EXPECT_EQ(nevra_of("https://mirror.invalid/p/libstdc%2B%2B-devel-11.4.1-3.el9.x86_64.rpm"),
              (Nevra{"libstdc++-devel", "11.4.1", "3.el9", "x86_64"}));
    EXPECT_EQ(nevra_of("kernel-devel-6.1.0-0%7erc1.1.fc40.x86_64.rpm"),
              (Nevra{"kernel-devel", "6.1.0", "0~rc1.1.fc40", "x86_64"}));
    // A '%' that starts no escape stays.
    EXPECT_EQ(nevra_of("odd%zz-1.0-1.x86_64.rpm"), (Nevra{"odd%zz", "1.0", "1", "x86_64"}));
}

TEST(RpmFileName, OtherShapesAreNotPackages) {
    for (const std::string file : {
             "",
             ".rpm",
             "x86_64.rpm",
             "kernel-devel.rpm",
             "kernel-devel.x86_64.rpm",
             "foo-1.0.rpm",                                  // no arch: "0-1" is not one
             "-3.10.0-1160.el7.x86_64.rpm",                  // no name
             "kernel--1160.el7.x86_64.rpm",                  // empty version
             "kernel-devel-3.10.0-.x86_64.rpm",              // empty release
             "kernel-devel-3.10.0-1160.el7..rpm",            // empty arch
             "kernel-devel-3.10.0-1160.el7.x86_64.rpm.sig",  // not .rpm
             "kernel-devel-3.10.0-1160.el7.x86_64.RPM",
             "linux-headers-6.1.0-18-amd64_6.1.76-1_amd64.deb",
             "https://mirror.invalid/management/v1/packages/0123abcd/download",
             "https://mirror.invalid/kernel-devel-3.10.0-1160.el7.x86_64.rpm/",
             "https://mirror.invalid/a%2Fkernel-devel-3.10.0-1160.el7.x86_64.rpm",  // escaped '/'
             "kernel devel-3.10.0-1160 el7.x86_64.rpm",
         }) {
        EXPECT_FALSE(rpm::parse_file_name(file)) << file;
    }
}

// Every package URL of the rpm-family kernel-packer lists: parsed, and put back together the
// same; the URLs without a file name (the Red Hat API's) are not packages.
TEST(RpmFileName, EveryKernelListUrl) {
    int packages = 0, others = 0;
    std::set<std::string> names;
    for (const auto& url : kernel_list_urls()) {
        const std::string file = url.substr(url.rfind('/') + 1);
        const bool rpm_file = file.size() > 4 && file.compare(file.size() - 4, 4, ".rpm") == 0;
        const auto p = rpm::parse_file_name(url);
        if (!rpm_file) {
            EXPECT_FALSE(p) << url;
            ++others;
            continue;
        }
        ASSERT_TRUE(p) << url;
        ++packages;
        EXPECT_EQ(p->name + "-" + p->version + "-" + p->release + "." + p->arch + ".rpm", file);
        EXPECT_EQ(p->arch, "x86_64") << url;
        EXPECT_TRUE(p->version[0] >= '0' && p->version[0] <= '9') << url;
        names.insert(p->name);
    }
    EXPECT_GT(packages, 1500);
    EXPECT_GT(others, 100);
    EXPECT_EQ(names, (std::set<std::string>{"kernel-devel", "kernel-rt-devel", "kernel-uek-devel"}));
}

// ---- rpm headers ----

// What `rpm -qp` says of a package.
rpm::Package query_with_rpm(const fs::path& file) {
    const ProcessResult r = run_checked({"rpm", "-qp", "--nosignature", "--nodigest", "--qf",
                                         "%{NAME}\\n%{EPOCH}\\n%{VERSION}\\n%{RELEASE}\\n%{ARCH}\\n%{SOURCERPM}\\n"
                                         "[P %{PROVIDENAME}\\n][R %{REQUIRENAME}\\n]",
                                         file.string()});
    std::istringstream lines(r.out);
    rpm::Package p;
    std::getline(lines, p.name);
    std::getline(lines, p.epoch);
    std::getline(lines, p.version);
    std::getline(lines, p.release);
    std::getline(lines, p.arch);
    std::getline(lines, p.sourcerpm);
    if (p.epoch == "(none)") p.epoch = "0";
    if (p.sourcerpm == "(none)") {
        p.sourcerpm.clear();
        p.arch = "src";  // rpm prints the build host's arch; a source package's is "src"
    }
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("P ", 0) == 0) p.provides.push_back(line.substr(2));
        if (line.rfind("R ", 0) == 0) p.requires_.push_back(line.substr(2));
    }
    p.size = static_cast<std::int64_t>(fs::file_size(file));
    return p;
}

void expect_same_package(const rpm::Package& got, const rpm::Package& want, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.epoch, want.epoch);
    EXPECT_EQ(got.version, want.version);
    EXPECT_EQ(got.release, want.release);
    EXPECT_EQ(got.arch, want.arch);
    EXPECT_EQ(got.sourcerpm, want.sourcerpm);
    EXPECT_EQ(got.size, want.size);
    EXPECT_EQ(got.provides, want.provides);
    EXPECT_EQ(got.requires_, want.requires_);
}

TEST(RpmHeader, FixturesReadAsRpmQueriesThem) {
    for (const auto& name : kFixtureRpms) {
        const fs::path file = fixture_dir() / name;
        expect_same_package(rpm::read_header(file.string()), query_with_rpm(file), name);
    }
}

TEST(RpmHeader, KernelDevelInDetail) {
    const rpm::Package p = rpm::read_header((fixture_dir() / kKernelDevel).string());
    EXPECT_EQ(p.name, "kernel-devel");
    EXPECT_EQ(p.epoch, "0");
    EXPECT_EQ(p.version, "5.14.0");
    EXPECT_EQ(p.release, "284.11.1.el9_2");
    EXPECT_EQ(p.arch, "x86_64");
    EXPECT_EQ(p.sourcerpm, "kernel-devel-5.14.0-284.11.1.el9_2.src.rpm");
    EXPECT_EQ(p.provides, (std::vector<std::string>{"kernel-devel", "kernel-devel(x86-64)", "kernel-devel-uname-r",
                                                    "kernel-devel-x86_64"}));
    EXPECT_NE(std::find(p.requires_.begin(), p.requires_.end(), "make"), p.requires_.end());
    EXPECT_EQ(p.size, static_cast<std::int64_t>(fs::file_size(fixture_dir() / kKernelDevel)));
    const rpm::Package tools = rpm::read_header((fixture_dir() / kTools).string());
    EXPECT_EQ(tools.epoch, "2");
    EXPECT_EQ(tools.version, "1.0^20240101git1f2e3d");
    EXPECT_EQ(tools.arch, "noarch");
    const rpm::Package source = rpm::read_header((fixture_dir() / kToolsSource).string());
    EXPECT_EQ(source.arch, "src");
    EXPECT_EQ(source.sourcerpm, "");
}

// Where the parts of an rpm file are, to cut or damage them.
struct Layout {
    std::size_t signature = 96;  // the signature header's intro
    std::size_t header = 0;      // the main header's intro
    std::uint32_t entries = 0;   // the main header's index entries
    std::size_t end = 0;         // the main header's end (the payload's start)
};

std::uint32_t be32_at(const std::string& bytes, std::size_t at) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

void put_be32(std::string& bytes, std::size_t at, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>(value >> (24 - 8 * i));
}

Layout layout_of(const std::string& bytes) {
    Layout l;
    const std::size_t signature_size =
        16 + 16 * std::size_t(be32_at(bytes, l.signature + 8)) + be32_at(bytes, l.signature + 12);
    l.header = l.signature + signature_size + (8 - signature_size % 8) % 8;
    l.entries = be32_at(bytes, l.header + 8);
    l.end = l.header + 16 + 16 * std::size_t(l.entries) + be32_at(bytes, l.header + 12);
    return l;
}

// The index entry of a tag in the main header.
std::size_t entry_of(const std::string& bytes, const Layout& l, std::uint32_t tag) {
    for (std::uint32_t i = 0; i < l.entries; ++i) {
        const std::size_t at = l.header + 16 + 16 * std::size_t(i);
        if (be32_at(bytes, at) == tag) return at;
    }
    throw Error("no tag " + std::to_string(tag));
}

class RpmHeaderDamage : public ::testing::Test {
protected:
    void SetUp() override {
        bytes_ = test::read_file(fixture_dir() / kKernelDevel);
        layout_ = layout_of(bytes_);
        ASSERT_EQ(be32_at(bytes_, layout_.header), 0x8EADE801u);
        ASSERT_LT(layout_.end, bytes_.size());
    }

    // read_header's error for these bytes as a file.
    std::string error_for(const std::string& bytes, const std::string& name) {
        const fs::path file = dir_ / name;
        test::write_file(file, bytes);
        const std::string message = error_of([&] { rpm::read_header(file.string()); });
        EXPECT_NE(message.find(file.string()), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        return message;
    }

    test::TempDir dir_;
    std::string bytes_;
    Layout layout_;
};

TEST_F(RpmHeaderDamage, TruncatedAnywhereInTheHeadersIsAnError) {
    const std::vector<std::pair<std::size_t, std::string>> cuts = {
        {0, ": not an rpm (bad lead magic)"},
        {3, ": not an rpm (bad lead magic)"},
        {50, ": lead truncated"},
        {96, ": signature header truncated"},
        {96 + 10, ": signature header truncated"},
        {layout_.header - 40, ": signature header truncated"},
        {layout_.header, ": header truncated"},
        {layout_.header + 20, ": header truncated"},
        {(layout_.header + layout_.end) / 2, ": header truncated"},
        {layout_.end - 1, ": header truncated"},
    };
    for (const auto& [size, cause] : cuts) {
        const std::string message = error_for(bytes_.substr(0, size), "cut-" + std::to_string(size) + ".rpm");
        EXPECT_NE(message.find(cause), std::string::npos)
            << "cut at " << size << ": " << message << "\nexpected: " << cause;
    }
    // Cut in the payload: the header is whole and reads.
    const fs::path file = dir_ / "cut-payload.rpm";
    test::write_file(file, bytes_.substr(0, layout_.end + 10));
    EXPECT_EQ(rpm::read_header(file.string()).name, "kernel-devel");
}

TEST_F(RpmHeaderDamage, DamagedHeadersAreNamedErrors) {
    std::string bytes = bytes_;
    bytes[0] = 'X';
    EXPECT_NE(error_for(bytes, "lead.rpm").find("not an rpm (bad lead magic)"), std::string::npos);

    bytes = bytes_;
    bytes[79] = 1;
    EXPECT_NE(error_for(bytes, "sigtype.rpm").find("unsupported signature type 1"), std::string::npos);

    bytes = bytes_;
    bytes[layout_.signature] = 0;
    EXPECT_NE(error_for(bytes, "sigmagic.rpm").find("signature header: bad magic"), std::string::npos);

    bytes = bytes_;
    bytes[layout_.header + 1] = 0;
    EXPECT_NE(error_for(bytes, "magic.rpm").find(": header: bad magic"), std::string::npos);

    bytes = bytes_;
    put_be32(bytes, layout_.header + 8, 0x7FFFFFFF);
    EXPECT_NE(error_for(bytes, "count.rpm").find("header: bad index entry count"), std::string::npos);

    bytes = bytes_;
    put_be32(bytes, layout_.header + 8, 0x00100000);  // within rpm's limit, beyond the file
    EXPECT_NE(error_for(bytes, "count2.rpm").find("header truncated"), std::string::npos);

    bytes = bytes_;
    put_be32(bytes, entry_of(bytes, layout_, 1000) + 8, 0x00FFFFF0);  // NAME's offset
    EXPECT_NE(error_for(bytes, "offset.rpm").find("tag 1000 has data past the header's end"), std::string::npos);

    bytes = bytes_;
    put_be32(bytes, entry_of(bytes, layout_, 1000) + 4, 4);  // NAME as an INT32
    EXPECT_NE(error_for(bytes, "type.rpm").find("tag 1000 has type 4, expected 6"), std::string::npos);

    bytes = bytes_;
    put_be32(bytes, entry_of(bytes, layout_, 1047) + 12, 0x00FFFFFF);  // PROVIDENAME's count
    EXPECT_NE(error_for(bytes, "strings.rpm").find("tag 1047 has more strings"), std::string::npos);

    bytes = bytes_;
    put_be32(bytes, entry_of(bytes, layout_, 1000), 999);  // no NAME left
    EXPECT_NE(error_for(bytes, "noname.rpm").find("no name"), std::string::npos);
}

TEST_F(RpmHeaderDamage, NotAnRpmAndMissingFiles) {
    EXPECT_NE(error_for("", "empty.rpm").find("not an rpm (bad lead magic)"), std::string::npos);
    EXPECT_NE(error_for("<?xml version=\"1.0\"?>\n<metadata/>\n", "text.rpm").find("not an rpm (bad lead magic)"),
              std::string::npos);
    const std::string missing = (dir_ / "missing.rpm").string();
    expect_error_line(error_of([&] { rpm::read_header(missing); }), missing, "cannot open");
}

// ---- repomd.xml ----

// As createrepo_c 0.17 writes it (the shape of a distribution's repomd.xml, with its database
// entries).
const char kRepomd[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1718000000</revision>
  <tags>
    <distro cpeid="cpe:/o:example:linux:9">Example Linux 9</distro>
  </tags>
  <data type="primary">
    <checksum type="sha256">76c0041440261d0868dd8dc02cdd96cce312016ec2aec13e060dcf679704732d</checksum>
    <open-checksum type="sha256">4130ac17df69aab8d5509c7b9fa833c98f1369c465768f7a9e8e5f433be2e489</open-checksum>
    <location href="repodata/76c0041440261d0868dd8dc02cdd96cce312016ec2aec13e060dcf679704732d-primary.xml.gz"/>
    <timestamp>1718000000</timestamp>
    <size>11937082</size>
    <open-size>106123597</open-size>
  </data>
  <data type="filelists">
    <checksum type="sha256">f855a9625fbdf14bab47d50cdaad60ddea53285a98557346cc6fefc9f839a147</checksum>
    <open-checksum type="sha256">ddaeb398476dc8b2072241c1a8656fc5c3176ae6da683b0f44b045f000e34931</open-checksum>
    <location href="repodata/f855a9625fbdf14bab47d50cdaad60ddea53285a98557346cc6fefc9f839a147-filelists.xml.gz"/>
    <timestamp>1718000000</timestamp>
    <size>474</size>
    <open-size>1007</open-size>
  </data>
  <data type="primary_db">
    <checksum type="sha256">aaf26e78b51e79bc24995353d31983410d580c652aced07e48b8e7c0b5ca7ff0</checksum>
    <open-checksum type="sha256">5f3c9e3bd1a1c4e8e4d0a4d6c1b7a2e9f0c8d7e6b5a4f3e2d1c0b9a8f7e6d5c4</open-checksum>
    <location href="repodata/aaf26e78b51e79bc24995353d31983410d580c652aced07e48b8e7c0b5ca7ff0-primary.sqlite.bz2"/>
    <timestamp>1718000000</timestamp>
    <size>2260</size>
    <open-size>106496</open-size>
    <database_version>10</database_version>
  </data>
  <data type="group">
    <checksum type="sha">0123456789abcdef0123456789abcdef01234567</checksum>
    <location href="repodata/comps.xml"/>
    <timestamp>1718000000</timestamp>
  </data>
</repomd>
)";

TEST(RpmRepomd, EveryDataEntry) {
    const auto data = rpm::parse_repomd(kRepomd);
    ASSERT_EQ(data.size(), 4u);
    const rpm::RepoData& primary = data[0];
    EXPECT_EQ(primary.type, "primary");
    EXPECT_EQ(primary.location,
              "repodata/76c0041440261d0868dd8dc02cdd96cce312016ec2aec13e060dcf679704732d-"
              "primary.xml.gz");
    EXPECT_EQ(primary.checksum_type, "sha256");
    EXPECT_EQ(primary.checksum, "76c0041440261d0868dd8dc02cdd96cce312016ec2aec13e060dcf679704732d");
    EXPECT_EQ(primary.open_checksum, "4130ac17df69aab8d5509c7b9fa833c98f1369c465768f7a9e8e5f433be2e489");
    EXPECT_EQ(primary.size, 11937082);
    EXPECT_EQ(primary.open_size, 106123597);
    EXPECT_EQ(data[1].type, "filelists");
    EXPECT_EQ(data[1].size, 474);
    EXPECT_EQ(data[2].type, "primary_db");
    EXPECT_EQ(data[2].location,
              "repodata/aaf26e78b51e79bc24995353d31983410d580c652aced07e48b8e7c0b5ca7ff0-"
              "primary.sqlite.bz2");
    // Sizes and the open checksum are optional.
    EXPECT_EQ(data[3].type, "group");
    EXPECT_EQ(data[3].checksum_type, "sha");
    EXPECT_EQ(data[3].size, -1);
    EXPECT_EQ(data[3].open_size, -1);
    EXPECT_EQ(data[3].open_checksum, "");
}

TEST(RpmRepomd, FindByType) {
    const auto data = rpm::parse_repomd(kRepomd);
    ASSERT_NE(rpm::find(data, "primary"), nullptr);
    EXPECT_EQ(rpm::find(data, "primary"), &data[0]);
    EXPECT_EQ(rpm::find(data, "primary_db"), &data[2]);
    EXPECT_EQ(rpm::find(data, "other"), nullptr);
    EXPECT_EQ(rpm::find({}, "primary"), nullptr);
}

TEST(RpmRepomd, OtherPrefixesAndNoNamespace) {
    // What matters is the local names: a document without the namespace reads the same.
    const auto data = rpm::parse_repomd(
        "<repomd><data type='primary'><checksum type='sha256'>ab</checksum>"
        "<location href='repodata/p.xml.zst'/><size> 12 </size></data></repomd>");
    ASSERT_EQ(data.size(), 1u);
    EXPECT_EQ(data[0].location, "repodata/p.xml.zst");
    EXPECT_EQ(data[0].checksum, "ab");
    EXPECT_EQ(data[0].size, 12);
    const auto prefixed = rpm::parse_repomd(
        "<r:repomd xmlns:r='http://linux.duke.edu/metadata/repo'><r:data type='other'>"
        "<r:location href='repodata/o.xml.gz'/></r:data></r:repomd>");
    ASSERT_EQ(prefixed.size(), 1u);
    EXPECT_EQ(prefixed[0].type, "other");
}

TEST(RpmRepomd, ErrorsNameTheOrigin) {
    const std::string origin = "https://mirror.invalid/9/BaseOS/x86_64/os/repodata/repomd.xml";
    const auto error = [&](const std::string& xml) { return error_of([&] { rpm::parse_repomd(xml, origin); }); };
    expect_error_line(error(std::string(kRepomd).substr(0, 700)), origin, "XML error at line");
    expect_error_line(error("<html><body>Not Found</body></html>"), origin, "not a repomd.xml (root element <html>)");
    expect_error_line(error("<repomd><data type='primary'><size>12x</size>"
                            "<location href='a'/></data></repomd>"),
                      origin, "<size> is not a size: \"12x\"");
    expect_error_line(error("<repomd><data type='primary'><checksum>1</checksum></data></repomd>"), origin,
                      "<data type=\"primary\"> has no location");
    expect_error_line(error("<repomd><data><location href='a'/></data></repomd>"), origin,
                      "a <data> element has no type");
    expect_error_line(error(""), origin, "XML error");
    // Without an origin, the file's name.
    expect_error_line(error_of([] { rpm::parse_repomd("<repomd>"); }), "repomd.xml", "XML error");
}

// ---- primary.xml, streamed ----

// One primary.xml <package>, shaped as createrepo_c writes it; `files` lengthens it.
std::string package_xml(int i, bool kernel, int files) {
    const std::string n = std::to_string(i);
    const std::string name = kernel ? "kernel-devel" : "pkg-" + n;
    const std::string version = "5.14.0", release = n + ".el9";
    std::string xml =
        "<package type=\"rpm\">\n"
        "  <name>" +
        name +
        "</name>\n"
        "  <arch>x86_64</arch>\n"
        "  <version epoch=\"" +
        std::to_string(i % 3) + "\" ver=\"" + version + "\" rel=\"" + release +
        "\"/>\n"
        "  <checksum type=\"sha256\" pkgid=\"YES\">" +
        std::string(64 - n.size(), 'c') + n +
        "</checksum>\n"
        "  <summary>Package " +
        n +
        " &amp; friends</summary>\n"
        "  <description>Line one of " +
        n +
        ".\n\nLine &lt;two&gt;.</description>\n"
        "  <packager>Example &lt;builder@example.invalid&gt;</packager>\n"
        "  <url>https://example.invalid/</url>\n"
        "  <time file=\"1718000000\" build=\"1717000000\"/>\n"
        "  <size package=\"" +
        std::to_string(100000 + i) +
        "\" installed=\"1\" archive=\"2\"/>\n"
        "  <location href=\"Packages/" +
        name + "-" + version + "-" + release +
        ".x86_64.rpm\"/>\n"
        "  <format>\n"
        "    <rpm:license>GPLv2</rpm:license>\n"
        "    <rpm:vendor>Example</rpm:vendor>\n"
        "    <rpm:group>Unspecified</rpm:group>\n"
        "    <rpm:buildhost>builder.example.invalid</rpm:buildhost>\n"
        "    <rpm:sourcerpm>kernel-" +
        version + "-" + release +
        ".src.rpm</rpm:sourcerpm>\n"
        "    <rpm:header-range start=\"4504\" end=\"" +
        std::to_string(9000 + i) +
        "\"/>\n"
        "    <rpm:provides>\n"
        "      <rpm:entry name=\"" +
        name + "\" flags=\"EQ\" epoch=\"0\" ver=\"" + version + "\" rel=\"" + release +
        "\"/>\n"
        "      <rpm:entry name=\"" +
        name + "-uname-r\" flags=\"EQ\" epoch=\"0\" ver=\"" + version +
        "\"/>\n"
        "    </rpm:provides>\n"
        "    <rpm:requires>\n"
        "      <rpm:entry name=\"/bin/sh\" pre=\"1\"/>\n"
        "      <rpm:entry name=\"make\" flags=\"GE\" epoch=\"0\" ver=\"3.78\"/>\n"
        "      <rpm:entry name=\"lib&amp;" +
        n +
        "\"/>\n"
        "    </rpm:requires>\n"
        "    <rpm:conflicts>\n"
        "      <rpm:entry name=\"not-a-requirement\"/>\n"
        "    </rpm:conflicts>\n";
    for (int f = 0; f < files; ++f)
        xml += "    <file>/usr/src/kernels/" + n + "/include/file-" + std::to_string(f) + ".h</file>\n";
    xml += "  </format>\n</package>\n";
    return xml;
}

constexpr int kPrimaryPackages = 12000;

// Every 97th package is a kernel-devel; their <file> lists make the text several MiB, so
// packages straddle the reader's chunks.
bool is_kernel(int i) {
    return i % 97 == 5;
}

std::string make_primary_xml() {
    std::string xml =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<metadata xmlns=\"http://linux.duke.edu/metadata/common\" "
        "xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"" +
        std::to_string(kPrimaryPackages) + "\">\n";
    for (int i = 0; i < kPrimaryPackages; ++i) xml += package_xml(i, is_kernel(i), i % 7);
    return xml + "</metadata>\n";
}

void check_kernel_package(const rpm::Package& p, int i) {
    const std::string n = std::to_string(i);
    EXPECT_EQ(p.name, "kernel-devel");
    EXPECT_EQ(p.arch, "x86_64");
    EXPECT_EQ(p.epoch, std::to_string(i % 3));
    EXPECT_EQ(p.version, "5.14.0");
    EXPECT_EQ(p.release, n + ".el9");
    EXPECT_EQ(p.checksum_type, "sha256");
    EXPECT_EQ(p.checksum, std::string(64 - n.size(), 'c') + n);
    EXPECT_EQ(p.size, 100000 + i);
    EXPECT_EQ(p.location, "Packages/kernel-devel-5.14.0-" + n + ".el9.x86_64.rpm");
    EXPECT_EQ(p.sourcerpm, "kernel-5.14.0-" + n + ".el9.src.rpm");
    EXPECT_EQ(p.provides, (std::vector<std::string>{"kernel-devel", "kernel-devel-uname-r"}));
    EXPECT_EQ(p.requires_, (std::vector<std::string>{"/bin/sh", "make", "lib&" + n}));
}

// Reads a primary file wanting kernel-devel: the indexes of the packages passed, each checked,
// and how many names `wanted` was asked about.
struct PrimaryRead {
    std::vector<int> kernels;
    int asked = 0;
};

PrimaryRead read_kernels(const std::string& path) {
    PrimaryRead read;
    rpm::read_primary(
        path,
        [&](std::string_view name) {
            ++read.asked;
            return name == "kernel-devel";
        },
        [&](const rpm::Package& p) {
            const int i = std::stoi(p.release);
            check_kernel_package(p, i);
            read.kernels.push_back(i);
        });
    return read;
}

std::vector<int> expected_kernels(int below = kPrimaryPackages) {
    std::vector<int> out;
    for (int i = 0; i < below; ++i)
        if (is_kernel(i)) out.push_back(i);
    return out;
}

// Compresses with the real tool, keeping the original: returns plain + suffix. Level 1: the
// same format, in a fraction of the time.
fs::path compress(const std::string& tool, const fs::path& plain, const std::string& suffix) {
    run_checked({tool, "-1", "-q", "-k", "-f", plain.string()});
    return plain.string() + suffix;
}

class RpmPrimaryFile : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir;
        plain_ = *dir_ / "primary.xml";
        test::write_file(plain_, make_primary_xml());
        gz_ = compress("gzip", plain_, ".gz");
        xz_ = compress("xz", plain_, ".xz");
        zst_ = compress("zstd", plain_, ".zst");
    }
    static void TearDownTestSuite() {
        delete dir_;
        dir_ = nullptr;
    }

    static void check_all(const fs::path& file) {
        const PrimaryRead read = read_kernels(file.string());
        EXPECT_EQ(read.kernels, expected_kernels()) << file;
        EXPECT_EQ(read.asked, kPrimaryPackages) << file;  // once per package
    }

    // A damaged copy: an error naming it and the cause, after the packages before the damage.
    static void check_damaged(const fs::path& file, const std::string& cause) {
        PrimaryRead read;
        const std::string message = error_of([&] { read = read_kernels(file.string()); });
        expect_error_line(message, file.string(), cause);
    }

    static void check_cut(const fs::path& whole, const std::string& cause) {
        const std::string data = test::read_file(whole);
        const fs::path cut = whole.string() + ".cut";
        test::write_file(cut, data.substr(0, data.size() / 2));
        PrimaryRead read;
        const std::string message = error_of([&] {
            rpm::read_primary(
                cut.string(), [](std::string_view name) { return name == "kernel-devel"; },
                [&](const rpm::Package& p) { read.kernels.push_back(std::stoi(p.release)); });
        });
        expect_error_line(message, cut.string(), cause);
        // The packages before the cut were passed, in order, and none after it.
        ASSERT_GT(read.kernels.size(), 10u) << cut;
        ASSERT_LT(read.kernels.size(), expected_kernels().size()) << cut;
        const std::vector<int> all = expected_kernels();
        EXPECT_TRUE(std::equal(read.kernels.begin(), read.kernels.end(), all.begin())) << cut;
    }

    // Damage in the middle is found by the decompressor or, when it decodes to garbage first,
    // by the XML parser: either way an error naming the file. Damage to the trailing checksum
    // is the decompressor's to find.
    static void check_corrupt(const fs::path& whole, const std::string& cause) {
        const std::string data = test::read_file(whole);
        std::string middle = data;
        for (std::size_t i = data.size() / 3; i < data.size() / 3 + 64; ++i) middle[i] ^= 0x55;
        const fs::path bad = whole.string() + ".bad";
        test::write_file(bad, middle);
        const std::string message = error_of([&] { read_kernels(bad.string()); });
        expect_error_line(message, bad.string(), "");
        EXPECT_TRUE(message.find(cause) != std::string::npos || message.find("XML error") != std::string::npos)
            << message;

        std::string trailer = data;
        trailer[data.size() - 6] ^= 0x55;
        const fs::path bad_check = whole.string() + ".bad-check";
        test::write_file(bad_check, trailer);
        check_damaged(bad_check, cause);
    }

    static test::TempDir* dir_;
    static fs::path plain_, gz_, xz_, zst_;
};

test::TempDir* RpmPrimaryFile::dir_ = nullptr;
fs::path RpmPrimaryFile::plain_, RpmPrimaryFile::gz_, RpmPrimaryFile::xz_, RpmPrimaryFile::zst_;

TEST_F(RpmPrimaryFile, IsManyChunksLong) {
    // The reader's chunks are 256 KiB.
    EXPECT_GT(fs::file_size(plain_), 8u << 20);
    EXPECT_GT(fs::file_size(gz_), 512u << 10);
}

TEST_F(RpmPrimaryFile, ReadsPlain) {
    check_all(plain_);
}
TEST_F(RpmPrimaryFile, ReadsGzip) {
    check_all(gz_);
}
TEST_F(RpmPrimaryFile, ReadsXz) {
    check_all(xz_);
}
TEST_F(RpmPrimaryFile, ReadsZstd) {
    check_all(zst_);
}

TEST_F(RpmPrimaryFile, TellsTheFormatByContentNotName) {
    const fs::path renamed = *dir_ / "primary-no-suffix";
    fs::copy_file(zst_, renamed, fs::copy_options::overwrite_existing);
    check_all(renamed);
}

TEST_F(RpmPrimaryFile, UnwantedPackagesAreNotPassed) {
    int passed = 0;
    const auto count = [&](const rpm::Package&) { ++passed; };
    rpm::read_primary(
        gz_.string(), [](std::string_view) { return false; }, count);
    EXPECT_EQ(passed, 0);
    rpm::read_primary(
        gz_.string(), [](std::string_view) { return true; }, count);
    EXPECT_EQ(passed, kPrimaryPackages);
}

TEST_F(RpmPrimaryFile, TruncatedFilesAreErrorsAfterThePackagesBefore) {
    check_cut(plain_, "XML error");
    check_cut(gz_, "gzip data is truncated");
    check_cut(xz_, "xz data is truncated");
    check_cut(zst_, "zstd data is truncated");
}

TEST_F(RpmPrimaryFile, CorruptFilesAreErrors) {
    check_corrupt(gz_, "gzip data is corrupt");
    check_corrupt(xz_, "xz data is corrupt");
    check_corrupt(zst_, "zstd data is corrupt");
}

TEST_F(RpmPrimaryFile, AnExceptionFromTheCallbackPropagates) {
    int passed = 0;
    const std::string message = error_of([&] {
        rpm::read_primary(
            xz_.string(), [](std::string_view name) { return name == "kernel-devel"; },
            [&](const rpm::Package&) {
                if (++passed == 3) throw Error("enough");
            });
    });
    EXPECT_EQ(message, "enough");
    EXPECT_EQ(passed, 3);
}

TEST(RpmPrimary, ConcatenatedZstdFramesReadAsOne) {
    test::TempDir dir;
    const std::string header =
        "<metadata xmlns='http://linux.duke.edu/metadata/common' "
        "xmlns:rpm='http://linux.duke.edu/metadata/rpm'>\n";
    test::write_file(dir / "a", header + package_xml(5, true, 1));
    test::write_file(dir / "b", package_xml(102, true, 2) + "</metadata>\n");
    compress("zstd", dir / "a", ".zst");
    compress("zstd", dir / "b", ".zst");
    test::write_file(dir / "ab.zst", test::read_file(dir / "a.zst") + test::read_file(dir / "b.zst"));
    EXPECT_EQ(read_kernels((dir / "ab.zst").string()).kernels, (std::vector<int>{5, 102}));
}

TEST(RpmPrimary, ErrorsNameTheFile) {
    test::TempDir dir;
    const std::string missing = (dir / "missing-primary.xml.gz").string();
    expect_error_line(error_of([&] { read_kernels(missing); }), missing, "cannot open");

    const fs::path other = dir / "filelists.xml";
    test::write_file(other, "<?xml version='1.0'?>\n<filelists packages='0'></filelists>\n");
    expect_error_line(error_of([&] { read_kernels(other.string()); }), other.string(),
                      "not a primary.xml (root element <filelists>)");

    const fs::path empty = dir / "empty.xml";
    test::write_file(empty, "");
    expect_error_line(error_of([&] { read_kernels(empty.string()); }), empty.string(), "XML error at line 1");

    const fs::path bz2 = dir / "primary.xml.bz2";
    test::write_file(bz2, "BZh91AY&SY");
    expect_error_line(error_of([&] { read_kernels(bz2.string()); }), bz2.string(), "bzip2 data is not supported");

    const fs::path bad_size = dir / "bad-size.xml";
    test::write_file(bad_size,
                     "<metadata><package><name>kernel-devel</name>"
                     "<size package='-3'/></package></metadata>");
    expect_error_line(error_of([&] { read_kernels(bad_size.string()); }), bad_size.string(),
                      "package kernel-devel: <size package> is not a size: \"-3\"");
}

TEST(RpmPrimary, NameAfterOtherFieldsAndMissingPieces) {
    test::TempDir dir;
    // createrepo writes <name> first; a package that does not is still read whole. A package
    // without <version> has epoch "0" and empty version and release.
    test::write_file(dir / "p.xml",
                     "<metadata><package><arch>noarch</arch><location href='a.rpm'/>"
                     "<format><provides><entry name='x'/></provides></format>"
                     "<name>late</name></package>"
                     "<package><name>bare</name></package></metadata>");
    std::vector<rpm::Package> got;
    rpm::read_primary((dir / "p.xml").string(), [](std::string_view) { return true; },
                      [&](const rpm::Package& p) { got.push_back(p); });
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].name, "late");
    EXPECT_EQ(got[0].arch, "noarch");
    EXPECT_EQ(got[0].location, "a.rpm");
    EXPECT_EQ(got[0].provides, std::vector<std::string>{"x"});
    EXPECT_EQ(got[1].name, "bare");
    EXPECT_EQ(got[1].epoch, "0");
    EXPECT_EQ(got[1].arch, "");
    EXPECT_EQ(got[1].size, -1);
    EXPECT_TRUE(got[1].provides.empty());
}

// ---- a repository made by createrepo_c over the fixture packages ----

std::string decompressed(const fs::path& file) {
    const std::string name = file.string();
    const std::string tool = name.size() > 3 && name.compare(name.size() - 3, 3, ".xz") == 0 ? "xz" : "gzip";
    return run_checked({tool, "-dc", name}).out;
}

class RpmCreaterepo : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir;
        for (const std::string compression : {"gz", "xz"}) {
            const fs::path repo = *dir_ / compression;
            fs::create_directories(repo / "Packages");
            for (const auto& name : kFixtureRpms) fs::copy_file(fixture_dir() / name, repo / "Packages" / name);
            run_checked(
                {"createrepo_c", "--quiet", "--no-database", "--general-compress-type", compression, repo.string()});
        }
    }
    static void TearDownTestSuite() {
        delete dir_;
        dir_ = nullptr;
    }

    static fs::path repo(const std::string& compression) { return *dir_ / compression; }

    static std::vector<rpm::RepoData> repomd(const std::string& compression) {
        const fs::path file = repo(compression) / "repodata/repomd.xml";
        return rpm::parse_repomd(test::read_file(file), file.string());
    }

    static fs::path primary_file(const std::string& compression) {
        const auto data = repomd(compression);
        const rpm::RepoData* primary = rpm::find(data, "primary");
        if (primary == nullptr) throw Error("no primary in " + compression);
        return repo(compression) / primary->location;
    }

    // The packages of a primary index against the files it lists.
    static void check_primary(const fs::path& primary, const fs::path& repo) {
        std::vector<rpm::Package> got;
        rpm::read_primary(
            primary.string(), [](std::string_view) { return true; }, [&](const rpm::Package& p) { got.push_back(p); });
        ASSERT_EQ(got.size(), kFixtureRpms.size()) << primary;
        std::set<std::string> locations;
        for (const auto& p : got) {
            SCOPED_TRACE(p.location);
            locations.insert(p.location);
            const fs::path file = repo / p.location;
            ASSERT_TRUE(fs::exists(file));
            EXPECT_EQ(p.checksum_type, "sha256");
            EXPECT_EQ(p.checksum, sha256_file(file.string()));
            EXPECT_EQ(p.size, static_cast<std::int64_t>(fs::file_size(file)));
            // The same package as its header says, except that createrepo leaves out the
            // rpmlib() requirements.
            rpm::Package header = rpm::read_header(file.string());
            header.requires_.erase(std::remove_if(header.requires_.begin(), header.requires_.end(),
                                                  [](const std::string& r) { return r.rfind("rpmlib(", 0) == 0; }),
                                   header.requires_.end());
            expect_same_package(p, header, primary.string());
        }
        std::set<std::string> expected;
        for (const auto& name : kFixtureRpms) expected.insert("Packages/" + name);
        EXPECT_EQ(locations, expected);
    }

    static test::TempDir* dir_;
};

test::TempDir* RpmCreaterepo::dir_ = nullptr;

TEST_F(RpmCreaterepo, RepomdMatchesTheFilesItNames) {
    for (const std::string compression : {"gz", "xz"}) {
        SCOPED_TRACE(compression);
        const auto data = repomd(compression);
        std::set<std::string> types;
        for (const auto& d : data) {
            SCOPED_TRACE(d.type);
            types.insert(d.type);
            const fs::path file = repo(compression) / d.location;
            ASSERT_TRUE(fs::exists(file));
            EXPECT_EQ(d.location.rfind("repodata/", 0), 0u);
            EXPECT_EQ(d.location.substr(d.location.size() - compression.size()), compression);
            EXPECT_EQ(d.checksum_type, "sha256");
            EXPECT_EQ(d.checksum, sha256_file(file.string()));
            EXPECT_EQ(d.size, static_cast<std::int64_t>(fs::file_size(file)));
            const std::string open = decompressed(file);
            EXPECT_EQ(d.open_size, static_cast<std::int64_t>(open.size()));
            EXPECT_EQ(d.open_checksum, sha256_text(open));
        }
        EXPECT_EQ(types, (std::set<std::string>{"primary", "filelists", "other"}));
    }
}

TEST_F(RpmCreaterepo, GzipPrimaryMatchesThePackages) {
    check_primary(primary_file("gz"), repo("gz"));
}

TEST_F(RpmCreaterepo, XzPrimaryMatchesThePackages) {
    check_primary(primary_file("xz"), repo("xz"));
}

TEST_F(RpmCreaterepo, ZstdPrimaryMatchesThePackages) {
    // createrepo_c 0.17 (bookworm) cannot write zstd: the same index recompressed with zstd.
    const fs::path plain = *dir_ / "zstd-primary.xml";
    test::write_file(plain, decompressed(primary_file("gz")));
    check_primary(compress("zstd", plain, ".zst"), repo("gz"));
}

TEST_F(RpmCreaterepo, WantedFilterPassesOnlyThoseNames) {
    std::vector<std::string> names;
    rpm::read_primary(
        primary_file("xz").string(), [](std::string_view name) { return name == "kernel-devel"; },
        [&](const rpm::Package& p) { names.push_back(p.name + "." + p.arch); });
    EXPECT_EQ(names, std::vector<std::string>{"kernel-devel.x86_64"});
}

}  // namespace
