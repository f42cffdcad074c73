#include "test_util.h"
#include "util/process.h"

#include <kbuild/deb.hpp>
#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

using namespace kbuild;

namespace {

// ---- version comparison, against dpkg itself ----

// Real versions from Debian and Ubuntu archives, paired so every rule of dpkg's ordering is
// exercised: epochs, '~' (backports, release candidates), '+' (security updates, binNMUs, dfsg),
// letters, numeric runs of different lengths, leading zeros, hyphens in upstream, no revision.
const std::vector<std::pair<std::string, std::string>> kVersionPairs = {
    // kernels: numeric runs, backports, ABI numbers
    {"6.1.76-1", "6.1.129-1"},
    {"6.1.129-1", "6.1.128-1"},
    {"5.10.209-2", "5.10.209-1"},
    {"5.10.209-2", "5.10.216-1"},
    {"6.12.12-1~bpo12+1", "6.12.12-1"},
    {"6.12.9-1~bpo12+1", "6.12.12-1~bpo12+1"},
    {"6.11.10-1~bpo12+1", "6.12.6-1~bpo12+1"},
    {"6.12.6-1~bpo12+1", "6.12.6-1~bpo12+2"},
    {"6.1.0-18", "6.1.0-9"},
    {"6.1.0-28", "6.1.0-28"},
    {"6.1.135-1", "6.1.137-1"},
    {"6.1.112-1", "6.1.115-1"},
    {"5.10.226-1", "5.10.223-1"},
    {"4.19.304-1", "5.10.216-1"},
    {"4.9.320-2", "4.9.320-3"},
    {"3.16.84-1", "3.16.81-1"},
    {"6.1.0-0.deb11.17", "6.1.0-0.deb11.13"},
    {"5.10.0-0.deb10.30", "5.10.0-0.deb10.9"},
    {"6.1.76-1~deb11u1", "6.1.76-1"},
    {"6.1.76-1~deb11u1", "6.1.69-1~deb11u1"},
    {"4.19.0-26", "4.19.0-27"},
    {"5.4.0-150.167", "5.4.0-42.46"},
    {"5.15.0-91.101", "5.15.0-100.110"},
    {"4.15.0-213.224", "4.15.0-212.223"},
    {"6.8.0-31.31~22.04.1", "6.8.0-31.31"},
    {"6.8.0-45.45~22.04.1", "6.8.0-31.31~22.04.1"},
    {"5.15.0-1050.55", "5.15.0-105.115"},
    {"6.1.0-1029-oem", "6.1.0-1029"},
    // epochs
    {"1:2.38.1-5+deb12u1", "2.38.1-5+deb12u1"},
    {"1:2.38.1-5+deb12u1", "1:2.38.1-5+deb12u2"},
    {"1:9.2p1-2+deb12u3", "1:9.2p1-2+deb12u2"},
    {"1:8.4p1-5+deb11u3", "1:9.2p1-2"},
    {"2:8.2.2434-3+deb11u1", "2:9.0.1378-2"},
    {"2:9.0.1378-2", "1:9.2p1-2"},
    {"0:1.0", "1.0"},
    {"1:0.1", "2.0"},
    {"10:1", "9:2"},
    {"1:1.2.13.dfsg-1", "1:1.2.11.dfsg-2+deb11u2"},
    {"1:7.4.33-1+deb11u5", "7.4.33-1+deb11u5"},
    {"2:1.0.1+git20200108-1", "1:1.0.1+git20200108-1"},
    {"1:3.0.2-1+deb12u1", "1:3.0.2-1"},
    {"00:1.0", "0:1.0"},
    // '~' sorts before everything, even the end of the string
    {"1.0~rc1-1", "1.0-1"},
    {"1.0~rc1-1", "1.0~rc2-1"},
    {"1.0~~", "1.0~"},
    {"1.0~", "1.0"},
    {"1.0~~a", "1.0~~"},
    {"1.0~a", "1.0~~"},
    {"1.0.0~alpha1", "1.0.0~beta1"},
    {"1.0.0~beta1", "1.0.0~rc1"},
    {"1.0.0~rc1+dfsg", "1.0.0~rc1"},
    {"6.0-1", "6.0~b1-1"},
    {"2.0~beta3-1", "2.0~beta10-1"},
    {"1.2.3~rc1", "1.2.3~"},
    {"3.0.11-1~deb12u2", "3.0.11-1~deb12u1"},
    {"3.0.15-1~deb12u1", "3.0.11-1~deb12u2"},
    {"3.0.11-1~deb12u2", "3.0.11-1"},
    {"252.22-1~deb12u1", "252.19-1~deb12u1"},
    {"252.33-1~deb12u1", "252.30-1~deb12u2"},
    {"9.18.28-1~deb12u2", "9.18.33-1~deb12u2"},
    {"102.15.1esr-1~deb11u1", "102.9.0esr-1~deb11u1"},
    {"115.12.0esr-1~deb12u1", "128.3.1esr-1~deb12u1"},
    {"2.4.57-2", "2.4.62-1~deb12u1"},
    // '+': security updates, binNMUs, repacks
    {"1.0+dfsg-1", "1.0-1"},
    {"1.0+dfsg-1", "1.0.1-1"},
    {"1.0+dfsg1-1", "1.0+dfsg-1"},
    {"2.36-9+deb12u4", "2.36-9+deb12u10"},
    {"2.36-9+deb12u9", "2.36-9+deb12u10"},
    {"2.36-9+deb12u4", "2.36-9"},
    {"12.2.0-14", "12.2.0-14+deb12u1"},
    {"7.88.1-10+deb12u5", "7.88.1-10+deb12u12"},
    {"5.2.15-2+b2", "5.2.15-2+b7"},
    {"5.2.15-2+b2", "5.2.15-2"},
    {"0.23.22-1", "0.23.22-1+b1"},
    {"3.11.2-6+deb12u5", "3.11.2-6"},
    {"1.18.0-6+deb11u3", "1.22.1-9"},
    {"2.1.0+git20230210.3a8b2c2-1", "2.1.0+git20221003.1b2f4c1-1"},
    {"1.0+really0.9-1", "1.0-1"},
    {"2.9.14+dfsg-1.3~deb12u1", "2.9.14+dfsg-1.3"},
    // letters sort before non-letters, upper case before lower case
    {"0.9.7a", "0.9.7"},
    {"0.9.7a", "0.9.7b"},
    {"0.9.8", "0.9.7z"},
    {"1.1.1w-0+deb11u1", "1.1.1n-0+deb11u5"},
    {"1.0a", "1.0+"},
    {"1.0a", "1.0."},
    {"1.0A", "1.0a"},
    {"2022c-1", "2022a-1"},
    {"2024a-0+deb12u1", "2025b-0+deb12u1"},
    {"2.7.4-0ubuntu1", "2.7.4-0ubuntu1.1"},
    {"1.2.3-1ubuntu1", "1.2.3-1"},
    {"1.2.3-1build1", "1.2.3-1ubuntu1"},
    {"1.2.3-1ubuntu0.1", "1.2.3-1build1"},
    {"8.0.36-0ubuntu0.22.04.1", "8.0.36-0ubuntu0.20.04.1"},
    {"1.21.22", "1.21.22ubuntu1"},
    // numeric runs: length, leading zeros
    {"1.22.1-9", "1.22.1-10"},
    {"20230210-5", "20230225-1"},
    {"0.0.26-3", "0.0.26-1"},
    {"1.0", "1.00"},
    {"1.001", "1.1"},
    {"1.010", "1.9"},
    {"2.12.1-1", "2.12-1"},
    {"3.1-1", "3.1.0-1"},
    {"1.9.10-1", "1.10.1-1"},
    {"999999999999999999999", "1000000000000000000000"},
    // revisions: missing, zero, hyphens in upstream
    {"1.0-1", "1.0"},
    {"1.0", "1.0-0"},
    {"1.0-0", "1.0-0.1"},
    {"1.5.2-dfsg-1", "1.5.2-1"},
    {"1.5.2-dfsg-1", "1.5.2-dfsg-2"},
    {"2.38.1", "2.38.1-5"},
    {"4.2.0-rc1-1", "4.2.0-1"},
    {"0.5.2-2-1", "0.5.2-10"},
    {"1.0-1", "1.0-0-1"},
    {"0", "0.0"},
    {"1.0", "1.0"},
};

// dpkg's answer for a against b: -1, 0 or 1.
int dpkg_sign(const std::string& a, const std::string& b) {
    const auto holds = [&](const char* relation) {
        const ProcessResult r = run_process({"dpkg", "--compare-versions", a, relation, b});
        if (r.exit_code != 0 && r.exit_code != 1)
            throw Error("dpkg --compare-versions " + a + " " + relation + " " + b + ": exit " +
                        std::to_string(r.exit_code) + ": " + r.err);
        return r.exit_code == 0;
    };
    if (holds("lt")) return -1;
    if (holds("gt")) return 1;
    if (!holds("eq")) throw Error("dpkg: " + a + " and " + b + " are neither lt, gt nor eq");
    return 0;
}

int sign(int value) {
    return (value > 0) - (value < 0);
}

TEST(DebVersion, TableIsLargeAndHasEveryKindOfAnswer) {
    EXPECT_GE(kVersionPairs.size(), 100u);
}

TEST(DebVersion, EveryPairOrdersAsDpkgDoes) {
    int less = 0, equal = 0, greater = 0;
    for (const auto& [a, b] : kVersionPairs) {
        const int expected = dpkg_sign(a, b);
        EXPECT_EQ(sign(deb::compare_versions(a, b)), expected) << a << " vs " << b;
        EXPECT_EQ(sign(deb::compare_versions(b, a)), dpkg_sign(b, a)) << b << " vs " << a;
        less += expected<0, equal += expected == 0, greater += expected> 0;
    }
    // The table is not one-sided, so a constant answer cannot pass.
    EXPECT_GE(less, 20);
    EXPECT_GE(equal, 5);
    EXPECT_GE(greater, 20);
}

TEST(DebVersion, EveryVersionEqualsItself) {
    for (const auto& [a, b] : kVersionPairs) {
        EXPECT_EQ(deb::compare_versions(a, a), 0) << a;
        EXPECT_EQ(deb::compare_versions(b, b), 0) << b;
    }
}

// ---- deb822 paragraphs ----

// One Packages entry, shaped as the archive writes it; `extra` lengthens its Description.
std::string package_entry(int i, const std::string& extra = "") {
    const std::string n = std::to_string(i);
    return "Package: pkg-" + n +
           "\n"
           "Source: src-" +
           std::to_string(i / 3) +
           "\n"
           "Version: 1." +
           n +
           "-1+deb12u1\n"
           "Installed-Size: " +
           std::to_string(100 + i) +
           "\n"
           "Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>\n"
           "Architecture: amd64\n"
           "Depends: libc6 (>= 2.34), linux-kbuild-6.1 (>= 6.1.76), gcc-12 | clang\n"
           "Description: test package " +
           n +
           "\n"
           " First line of the long description of " +
           n +
           ".\n"
           " .\n"
           " Second paragraph" +
           extra +
           ".\n"
           "Section: kernel\n"
           "Priority: optional\n"
           "Filename: pool/main/p/pkg/pkg-" +
           n + "_1." + n +
           "-1_amd64.deb\n"
           "Size: " +
           std::to_string(1000 + i * 7) +
           "\n"
           "SHA256: " +
           std::string(64 - n.size(), 'a') + n + "\n";
}

std::string expected_description(int i, const std::string& extra = "") {
    const std::string n = std::to_string(i);
    return "test package " + n + "\n First line of the long description of " + n + ".\n .\n Second paragraph" + extra +
           ".";
}

// Packages text larger than the reader's 1 MiB chunks, with paragraphs of varied sizes and one
// paragraph (index kHugeEntry) larger than a chunk on its own.
constexpr int kEntries = 5000;
constexpr int kHugeEntry = 2500;

std::string huge_text() {
    return std::string(3 << 20, 'x');
}

std::string make_packages_text() {
    std::string text;
    const std::string huge = huge_text();
    for (int i = 0; i < kEntries; ++i) {
        text += package_entry(i, i == kHugeEntry ? huge : std::string(i % 97, 'y'));
        text += "\n";
    }
    return text;
}

void check_packages(const std::string& path) {
    const std::string huge = huge_text();
    int count = 0;
    deb::read_paragraphs(path, [&](const deb::Paragraph& p) {
        const int i = count++;
        const std::string n = std::to_string(i);
        ASSERT_EQ(p.fields().size(), 13u) << "paragraph " << i;
        EXPECT_EQ(p.get("Package"), "pkg-" + n);
        EXPECT_EQ(p.get("Version"), "1." + n + "-1+deb12u1");
        EXPECT_EQ(p.get("Filename"), "pool/main/p/pkg/pkg-" + n + "_1." + n + "-1_amd64.deb");
        EXPECT_EQ(p.get("Size"), std::to_string(1000 + i * 7));
        EXPECT_EQ(p.get("SHA256"), std::string(64 - n.size(), 'a') + n);
        const std::string extra = i == kHugeEntry ? huge : std::string(i % 97, 'y');
        EXPECT_EQ(p.get("Description"), expected_description(i, extra)) << "paragraph " << i;
    });
    EXPECT_EQ(count, kEntries) << path;
}

// Compresses `plain` with the real tool, keeping the original: returns plain + suffix. Level 1:
// the same format as the archive's, in a fraction of the time.
std::filesystem::path compress(const std::string& tool, const std::filesystem::path& plain, const std::string& suffix) {
    const ProcessResult r = run_process({tool, "-1", "-k", "-f", plain.string()});
    if (r.exit_code != 0) throw Error(tool + " " + plain.string() + ": " + r.err);
    return plain.string() + suffix;
}

class DebPackagesFile : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir;
        plain_ = *dir_ / "Packages";
        test::write_file(plain_, make_packages_text());
        xz_ = compress("xz", plain_, ".xz");
        gz_ = compress("gzip", plain_, ".gz");
    }
    static void TearDownTestSuite() {
        delete dir_;
        dir_ = nullptr;
    }

    static test::TempDir* dir_;
    static std::filesystem::path plain_, xz_, gz_;
};

test::TempDir* DebPackagesFile::dir_ = nullptr;
std::filesystem::path DebPackagesFile::plain_, DebPackagesFile::xz_, DebPackagesFile::gz_;

TEST_F(DebPackagesFile, IsLargerThanTheReadersChunks) {
    // Besides the huge paragraph, more than one chunk of ordinary ones.
    EXPECT_GT(std::filesystem::file_size(plain_) - huge_text().size(), 2u << 20);
}

TEST_F(DebPackagesFile, ReadsPlainText) {
    check_packages(plain_.string());
}

TEST_F(DebPackagesFile, ReadsXz) {
    check_packages(xz_.string());
}

TEST_F(DebPackagesFile, ReadsGzip) {
    check_packages(gz_.string());
}

TEST_F(DebPackagesFile, TellsTheFormatByContentNotName) {
    const std::filesystem::path renamed = *dir_ / "Packages-no-suffix";
    std::filesystem::copy_file(xz_, renamed, std::filesystem::copy_options::overwrite_existing);
    check_packages(renamed.string());
}

void expect_read_error(const std::string& path, const std::string& cause) {
    try {
        deb::read_paragraphs(path, [](const deb::Paragraph&) {});
        FAIL() << path << ": no error";
    } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(path), std::string::npos) << message;
        EXPECT_NE(message.find(cause), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
}

TEST_F(DebPackagesFile, TruncatedXzIsAnError) {
    const std::string data = test::read_file(xz_);
    const std::filesystem::path cut = *dir_ / "Packages-cut.xz";
    test::write_file(cut, data.substr(0, data.size() / 2));
    expect_read_error(cut.string(), "xz data is truncated");
}

TEST_F(DebPackagesFile, TruncatedGzipIsAnError) {
    const std::string data = test::read_file(gz_);
    const std::filesystem::path cut = *dir_ / "Packages-cut.gz";
    test::write_file(cut, data.substr(0, data.size() / 2));
    expect_read_error(cut.string(), "gzip data is truncated");
}

TEST_F(DebPackagesFile, CorruptXzIsAnError) {
    std::string data = test::read_file(xz_);
    for (std::size_t i = data.size() / 3; i < data.size() / 3 + 64; ++i) data[i] ^= 0x55;
    const std::filesystem::path bad = *dir_ / "Packages-bad.xz";
    test::write_file(bad, data);
    expect_read_error(bad.string(), "xz data is corrupt");
}

TEST_F(DebPackagesFile, CorruptGzipIsAnError) {
    std::string data = test::read_file(gz_);
    for (std::size_t i = data.size() / 3; i < data.size() / 3 + 64; ++i) data[i] ^= 0x55;
    const std::filesystem::path bad = *dir_ / "Packages-bad.gz";
    test::write_file(bad, data);
    expect_read_error(bad.string(), "gzip data is corrupt");
}

TEST(DebParagraphs, MissingFileIsAnErrorNamingIt) {
    test::TempDir dir;
    expect_read_error((dir / "no-such-Packages.xz").string(), "cannot open");
}

TEST(DebParagraphs, ConcatenatedGzipMembersReadAsOneText) {
    test::TempDir dir;
    test::write_file(dir / "a", package_entry(0) + "\n");
    test::write_file(dir / "b", package_entry(1));
    compress("gzip", dir / "a", ".gz");
    compress("gzip", dir / "b", ".gz");
    test::write_file(dir / "ab.gz", test::read_file(dir / "a.gz") + test::read_file(dir / "b.gz"));
    std::vector<std::string> names;
    deb::read_paragraphs((dir / "ab.gz").string(),
                         [&](const deb::Paragraph& p) { names.emplace_back(p.get("package")); });
    EXPECT_EQ(names, (std::vector<std::string>{"pkg-0", "pkg-1"}));
}

TEST(DebParagraphs, EmptyFileHasNoParagraphs) {
    test::TempDir dir;
    test::write_file(dir / "Packages", "");
    int count = 0;
    deb::read_paragraphs((dir / "Packages").string(), [&](const deb::Paragraph&) { ++count; });
    EXPECT_EQ(count, 0);
}

std::vector<std::vector<std::pair<std::string, std::string>>> collect(std::string_view text) {
    std::vector<std::vector<std::pair<std::string, std::string>>> paragraphs;
    deb::read_paragraphs_text(text, [&](const deb::Paragraph& p) {
        auto& fields = paragraphs.emplace_back();
        for (const auto& [name, value] : p.fields()) fields.emplace_back(name, value);
    });
    return paragraphs;
}

using Fields = std::vector<std::pair<std::string, std::string>>;

TEST(DebParagraphs, SeparatorsAndEnds) {
    // Leading and repeated blank lines, a whitespace-only separator, no final newline.
    const auto paragraphs = collect("\n\nA: 1\nB: 2\n\n\n\nC: 3\n  \t\nD: 4");
    ASSERT_EQ(paragraphs.size(), 3u);
    EXPECT_EQ(paragraphs[0], (Fields{{"A", "1"}, {"B", "2"}}));
    EXPECT_EQ(paragraphs[1], (Fields{{"C", "3"}}));
    EXPECT_EQ(paragraphs[2], (Fields{{"D", "4"}}));
    EXPECT_TRUE(collect("").empty());
    EXPECT_TRUE(collect("\n\n \n").empty());
}

TEST(DebParagraphs, ValuesAreTrimmedAndKeepTheirContinuationLines) {
    const auto paragraphs = collect(
        "Package:   linux-headers-6.1.0-18-amd64  \n"
        "Description: Header files for Linux 6.1.0-18-amd64\n"
        " This package provides the architecture-specific kernel header files\n"
        " .\n"
        " for Linux kernel 6.1.0-18-amd64.\n"
        "Empty:\n"
        "Files:\n"
        " 0ed6d4c8 1484322 contrib/Contents-all\n"
        " d0a0325a 98581 contrib/Contents-all.gz\n"
        "Name With Space : x\n"
        "Url: http://example.org:8080/a\r\n");
    ASSERT_EQ(paragraphs.size(), 1u);
    EXPECT_EQ(paragraphs[0], (Fields{{"Package", "linux-headers-6.1.0-18-amd64"},
                                     {"Description",
                                      "Header files for Linux 6.1.0-18-amd64\n"
                                      " This package provides the architecture-specific kernel header files\n"
                                      " .\n"
                                      " for Linux kernel 6.1.0-18-amd64."},
                                     {"Empty", ""},
                                     // As dpkg keeps it: a value that starts on the next line keeps the "\n".
                                     {"Files",
                                      "\n 0ed6d4c8 1484322 contrib/Contents-all\n"
                                      " d0a0325a 98581 contrib/Contents-all.gz"},
                                     {"Name With Space", "x"},
                                     {"Url", "http://example.org:8080/a"}}));
}

TEST(DebParagraphs, CommentLinesAreSkipped) {
    // apt's deb822 sources files carry comments between fields.
    const auto paragraphs = collect(
        "# bookworm\n"
        "Types: deb\n"
        "# http://snapshot.example/archive/debian/20250520T000000Z\n"
        "URIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "\n"
        "# disabled\n"
        "Types: deb-src\n");
    ASSERT_EQ(paragraphs.size(), 2u);
    EXPECT_EQ(
        paragraphs[0],
        (Fields{{"Types", "deb"}, {"URIs", "http://mirror.example/debian"}, {"Suites", "bookworm bookworm-updates"}}));
    EXPECT_EQ(paragraphs[1], (Fields{{"Types", "deb-src"}}));
}

TEST(DebParagraphs, FieldNamesAreCaseInsensitive) {
    deb::Paragraph p;
    p.parse("Package: linux-image-amd64\nVersion: 6.1.76-1\nBuilt-Using: linux (= 6.1.76-1)\n");
    EXPECT_EQ(p.get("package"), "linux-image-amd64");
    EXPECT_EQ(p.get("VERSION"), "6.1.76-1");
    EXPECT_EQ(p.get("built-using"), "linux (= 6.1.76-1)");
    EXPECT_TRUE(p.has("BUILT-USING"));
    EXPECT_FALSE(p.has("Depends"));
    EXPECT_EQ(p.get("Depends"), "");
    EXPECT_FALSE(p.has("Packag"));
    p.parse("Source: linux\n");  // parsing again replaces the fields
    EXPECT_FALSE(p.has("Package"));
    EXPECT_EQ(p.get("source"), "linux");
}

// ---- Release and InRelease ----

const char kReleaseBody[] =
    "Origin: Debian\n"
    "Label: Debian\n"
    "Suite: oldstable\n"
    "Version: 12.10\n"
    "Codename: bookworm\n"
    "Date: Sat, 15 Mar 2025 10:46:35 UTC\n"
    "Acquire-By-Hash: yes\n"
    "Architectures: all amd64 arm64 armel armhf i386 mips64el mipsel ppc64el s390x\n"
    "Components: main contrib non-free-firmware non-free\n"
    "Description: Debian 12.10 Released 15 March 2025\n"
    "MD5Sum:\n"
    " 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all\n"
    " d0a0325a97c42fd5f66a8c3e29bcea64    98581 main/binary-amd64/Packages.xz\n"
    "SHA256:\n"
    " 3957f28db16e3f28c7b34ae84f1c929c567de6970f3f1b95dac9b498dd80fe63   738242 "
    "contrib/Contents-all\n"
    " 8d7a5c8e5d2d3f4ac9cc5bd64a3b17d8a1b7e1a4ba1b2a2c6e7d0a4e8f3e5d9c    46052 "
    "main/binary-amd64/Packages\n"
    " 1f0ca4d2c1b6ad4e0bb3c2b1a0c2a6a8f3d1b4e9a7c0d2e5f8a1b3c4d5e6f7a8  8790396 "
    "main/binary-amd64/Packages.xz\n"
    " 796a3aa4f31e5a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b      117 "
    "main/binary-amd64/Release\n";

void expect_bookworm_release(const deb::ReleaseFile& r) {
    EXPECT_EQ(r.origin, "Debian");
    EXPECT_EQ(r.suite, "oldstable");
    EXPECT_EQ(r.codename, "bookworm");
    EXPECT_EQ(r.date, "Sat, 15 Mar 2025 10:46:35 UTC");
    EXPECT_EQ(r.architectures, (std::vector<std::string>{"all", "amd64", "arm64", "armel", "armhf", "i386", "mips64el",
                                                         "mipsel", "ppc64el", "s390x"}));
    EXPECT_EQ(r.components, (std::vector<std::string>{"main", "contrib", "non-free-firmware", "non-free"}));
    ASSERT_EQ(r.files.size(), 4u);
    const auto& xz = r.files.at("main/binary-amd64/Packages.xz");
    EXPECT_EQ(xz.sha256, "1f0ca4d2c1b6ad4e0bb3c2b1a0c2a6a8f3d1b4e9a7c0d2e5f8a1b3c4d5e6f7a8");
    EXPECT_EQ(xz.size, 8790396);
    EXPECT_EQ(r.files.at("contrib/Contents-all").size, 738242);
    EXPECT_EQ(r.files.at("main/binary-amd64/Release").size, 117);
    EXPECT_EQ(r.files.at("main/binary-amd64/Packages").sha256,
              "8d7a5c8e5d2d3f4ac9cc5bd64a3b17d8a1b7e1a4ba1b2a2c6e7d0a4e8f3e5d9c");
}

TEST(DebRelease, PlainRelease) {
    expect_bookworm_release(deb::parse_release(kReleaseBody));
}

// A clearsigned InRelease is never read as it is: only the text the host's verify gave back,
// so no code path can skip the signature.
TEST(DebRelease, ASignedMessageIsRefused) {
    const std::string in_release = std::string(
                                       "-----BEGIN PGP SIGNED MESSAGE-----\n"
                                       "Hash: SHA256\n"
                                       "\n") +
                                   kReleaseBody +
                                   "-----BEGIN PGP SIGNATURE-----\n"
                                   "\n"
                                   "iQIzBAEBCAAdFiEEpyNohvPMyq0Uiif4DphATThvodkFAmfVWdsACgkQDphATThv\n"
                                   "=AfjX\n"
                                   "-----END PGP SIGNATURE-----\n";
    try {
        deb::parse_release(in_release);
        FAIL() << "a signed message was parsed";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("a signed message, not its verified text"), std::string::npos) << e.what();
    }
}

// Ubuntu's development series lists SHA512 only: read like SHA256.
TEST(DebRelease, Sha512OnlyIsRead) {
    const deb::ReleaseFile r = deb::parse_release(
        "Origin: Ubuntu\nSuite: resolute\nDate: Thu, 03 Dec 2026 10:00:00 UTC\n"
        "Valid-Until: Thu, 10 Dec 2026 10:00:00 UTC\nSHA512:\n"
        " 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6"
        "9788796a5b4c3d2e1f0"
        " 1234 main/binary-amd64/Packages.xz\n");
    ASSERT_EQ(r.files.count("main/binary-amd64/Packages.xz"), 1u);
    const auto& xz = r.files.at("main/binary-amd64/Packages.xz");
    EXPECT_TRUE(xz.sha256.empty());
    EXPECT_EQ(xz.sha512.size(), 128u);
    EXPECT_EQ(xz.size, 1234);
    EXPECT_EQ(r.valid_until, "Thu, 10 Dec 2026 10:00:00 UTC");
}

TEST(DebRelease, DatesAreReadAsUtcSeconds) {
    EXPECT_EQ(deb::release_time("Sat, 15 Mar 2025 10:46:35 UTC"), 1742035595);
    EXPECT_EQ(deb::release_time("15 Mar 2025 10:46:35 UTC"), 1742035595);
    EXPECT_EQ(deb::release_time("Sat, 15 Mar 2025 11:46:35 +0100"), 1742035595);
    EXPECT_EQ(deb::release_time("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    EXPECT_EQ(deb::release_time("Sat, 29 Feb 2028 00:00:00 UTC"), 1835395200);
    EXPECT_FALSE(deb::release_time("yesterday"));
    EXPECT_FALSE(deb::release_time("Sat, 15 Foo 2025 10:46:35 UTC"));
    EXPECT_FALSE(deb::release_time("Sat, 15 Mar 2025 10:46:35 CEST"));
}

TEST(DebRelease, MissingFieldsAreEmpty) {
    const deb::ReleaseFile r = deb::parse_release("Origin: Debian\nSuite: bookworm-security\n");
    EXPECT_EQ(r.origin, "Debian");
    EXPECT_EQ(r.suite, "bookworm-security");
    EXPECT_TRUE(r.codename.empty());
    EXPECT_TRUE(r.architectures.empty());
    EXPECT_TRUE(r.files.empty());
}

// ---- relations ----

std::string render(const std::vector<std::vector<deb::Relation>>& groups) {
    std::string out;
    for (const auto& group : groups) {
        if (!out.empty()) out += ", ";
        for (std::size_t i = 0; i < group.size(); ++i) {
            if (i > 0) out += " | ";
            out += group[i].name;
            if (!group[i].op.empty()) out += " (" + group[i].op + " " + group[i].version + ")";
        }
    }
    return out;
}

TEST(DebRelations, AndOfOrGroups) {
    const auto groups = deb::parse_relations("a (>= 1.0) [amd64] <!nocheck> | b:any, c");
    ASSERT_EQ(groups.size(), 2u);
    ASSERT_EQ(groups[0].size(), 2u);
    EXPECT_EQ(groups[0][0].name, "a");
    EXPECT_EQ(groups[0][0].op, ">=");
    EXPECT_EQ(groups[0][0].version, "1.0");
    EXPECT_EQ(groups[0][1].name, "b");
    EXPECT_EQ(groups[0][1].op, "");
    EXPECT_EQ(groups[0][1].version, "");
    ASSERT_EQ(groups[1].size(), 1u);
    EXPECT_EQ(groups[1][0].name, "c");
}

TEST(DebRelations, RealFields) {
    EXPECT_EQ(render(deb::parse_relations("linux-headers-6.1.0-18-common (= 6.1.76-1), linux-kbuild-6.1 (>= 6.1.76-1), "
                                          "linux-compiler-gcc-12-x86")),
              "linux-headers-6.1.0-18-common (= 6.1.76-1), linux-kbuild-6.1 (>= 6.1.76-1), "
              "linux-compiler-gcc-12-x86");
    EXPECT_EQ(render(deb::parse_relations("libc6 (>= 2.34), zlib1g (>= 1:1.2.0)")),
              "libc6 (>= 2.34), zlib1g (>= 1:1.2.0)");
    EXPECT_EQ(render(deb::parse_relations("fonts-dejavu-core | ttf-dejavu-core, fonts-freefont-ttf | ttf-freefont")),
              "fonts-dejavu-core | ttf-dejavu-core, fonts-freefont-ttf | ttf-freefont");
    EXPECT_EQ(render(deb::parse_relations("0ad-data (<< 0.0.12-1~), python3:any (>= 3.11~)")),
              "0ad-data (<< 0.0.12-1~), python3 (>= 3.11~)");
    // Build-Depends: arch lists, build profiles, multi-arch qualifiers, tight spacing.
    EXPECT_EQ(render(deb::parse_relations("debhelper-compat (= 13), libelf-dev:native [linux-any] <!stage1>,\n"
                                          " gcc-12:native | gcc, python3-docutils <!nodoc> <!pkg.linux.nokernel>,\n"
                                          " kmod(>=27)[!hurd-any], dwarves (>=1.16~) [linux-any],")),
              "debhelper-compat (= 13), libelf-dev, gcc-12 | gcc, python3-docutils, "
              "kmod (>= 27), dwarves (>= 1.16~)");
    // The obsolete "<" and ">" mean "<=" and ">=" to dpkg.
    EXPECT_EQ(render(deb::parse_relations("old (< 1.0), older (> 2)")), "old (<= 1.0), older (>= 2)");
    EXPECT_EQ(render(deb::parse_relations("a ( <= 1.0 ), b (>> 2:1.0-1~bpo12+1)")),
              "a (<= 1.0), b (>> 2:1.0-1~bpo12+1)");
}

TEST(DebRelations, EmptyFieldsAndGroups) {
    EXPECT_TRUE(deb::parse_relations("").empty());
    EXPECT_TRUE(deb::parse_relations("  ,  , ").empty());
    EXPECT_EQ(render(deb::parse_relations("a, , b |, c")), "a, b, c");
}

}  // namespace
