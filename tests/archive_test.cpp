// Every archive here is made for real: .debs by dpkg-deb -b, rpms by rpmbuild, tarballs by tar,
// and the hostile tarballs (entries no tool would write) by libarchive's writer.
#include "test_util.h"
#include "unpack/extract.h"  // kbuild's; <archive.h> is libarchive's
#include "util/process.h"

#include <kbuild/types.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>
#include <memory>
#include <random>
#include <thread>

namespace fs = std::filesystem;
using kbuild::DebMember;
using kbuild::extract_archive;
using kbuild::run_process;
using kbuild::test::read_file;
using kbuild::test::TempDir;
using kbuild::test::write_file;

namespace {

void run(const std::vector<std::string>& argv) {
    const kbuild::ProcessResult r = run_process(argv);
    ASSERT_EQ(r.exit_code, 0) << argv[0] << " failed: " << r.err << r.out;
}

// A little header tree: nested directories, text and binary files, an executable, a relative
// symlink that points out of the package (like Debian's `scripts`), an absolute one, and one
// inside the tree.
void make_header_tree(const fs::path& root, const std::string& package) {
    const fs::path src = root / "usr/src" / package;
    write_file(src / "Makefile", "include $(srctree)/Makefile\n");
    write_file(src / "include/linux/version.h", "#define LINUX_VERSION_CODE 393472\n");
    write_file(src / "include/generated/autoconf.h", "#define CONFIG_X86 1\n");
    std::string binary(300000, '\0');
    std::mt19937 random(42);
    for (char& c : binary) c = static_cast<char>(random());
    write_file(src / "scripts/mod/modpost.bin", binary);
    write_file(src / "scripts/basic/fixdep", "#!/bin/sh\nexit 0\n");
    fs::permissions(src / "scripts/basic/fixdep", fs::perms(0755));
    fs::create_directories(src / "empty");
    fs::create_symlink("../../lib/linux-kbuild-6.1/tools", src / "tools");
    fs::create_symlink("/usr/src/" + package, root / "build");
    fs::create_symlink("include/linux/version.h", src / "version.h");
}

void make_control(const fs::path& root, const std::string& package) {
    write_file(root / "DEBIAN/control", "Package: " + package +
                                            "\nVersion: 1.0\nArchitecture: all\n"
                                            "Maintainer: kbuild tests <kbuild@example.org>\n"
                                            "Description: archive test package\n");
}

fs::path build_deb(const fs::path& tree, const fs::path& deb, const std::string& compression) {
    run({"dpkg-deb", "--root-owner-group", "-Z" + compression, "-b", tree.string(), deb.string()});
    return deb;
}

// One line per entry: path, type, mode, and for files and links size, mtime and target. diff -r
// ignores modes and times; this does not. Not a directory's mtime: tar creates symlinks last,
// which touches their directories after it set their times.
std::string listing(const fs::path& root) {
    const kbuild::ProcessResult r =
        run_process({"sh", "-c",
                     "cd \"$0\" && find . -mindepth 1 \\( -type d -printf '%P %y %m\\n' \\) -o "
                     "-printf '%P %y %m %s %T@ %l\\n' | sort",
                     root.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
}

void expect_same_tree(const fs::path& ours, const fs::path& reference) {
    const kbuild::ProcessResult diff =
        run_process({"diff", "-r", "--no-dereference", ours.string(), reference.string()});
    EXPECT_EQ(diff.exit_code, 0) << diff.out << diff.err;
    EXPECT_EQ(listing(ours), listing(reference));
}

std::string extract_error(const fs::path& archive, const fs::path& dest, DebMember member = DebMember::data) {
    try {
        extract_archive(archive, dest, member);
    } catch (const kbuild::Error& e) {
        return e.what();
    }
    return "(no error)";
}

// Tarballs with entries no honest tool writes, made with libarchive's writer.
struct TarEntry {
    std::string path;
    mode_t type = AE_IFREG;
    std::string content;  // file data, or the target of a symlink or hard link
    bool hardlink = false;
    int perm = 0644;
};

struct WriteArchiveFree {
    void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryFree {
    void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};

void write_tar(const fs::path& file, const std::vector<TarEntry>& entries) {
    std::unique_ptr<struct archive, WriteArchiveFree> tar(archive_write_new());
    archive_write_set_format_pax_restricted(tar.get());
    ASSERT_EQ(archive_write_open_filename(tar.get(), file.c_str()), ARCHIVE_OK);
    for (const TarEntry& e : entries) {
        std::unique_ptr<struct archive_entry, EntryFree> entry(archive_entry_new());
        archive_entry_set_pathname(entry.get(), e.path.c_str());
        archive_entry_set_perm(entry.get(), e.perm);
        archive_entry_set_mtime(entry.get(), 1700000000, 0);
        if (e.hardlink) {
            archive_entry_set_filetype(entry.get(), AE_IFREG);
            archive_entry_set_hardlink(entry.get(), e.content.c_str());
        } else {
            archive_entry_set_filetype(entry.get(), e.type);
            if (e.type == AE_IFLNK) archive_entry_set_symlink(entry.get(), e.content.c_str());
            if (e.type == AE_IFREG) archive_entry_set_size(entry.get(), e.content.size());
        }
        ASSERT_EQ(archive_write_header(tar.get(), entry.get()), ARCHIVE_OK);
        if (!e.hardlink && e.type == AE_IFREG && !e.content.empty()) {
            ASSERT_EQ(archive_write_data(tar.get(), e.content.data(), e.content.size()),
                      static_cast<la_ssize_t>(e.content.size()));
        }
    }
    ASSERT_EQ(archive_write_close(tar.get()), ARCHIVE_OK);
}

class DebCompression : public testing::TestWithParam<std::string> {};

TEST_P(DebCompression, ContentsMatchDpkgDebByteForByte) {
    TempDir dir;
    make_header_tree(dir / "tree", "linux-headers-test");
    make_control(dir / "tree", "linux-headers-test");
    const fs::path deb = build_deb(dir / "tree", dir / "test.deb", GetParam());

    const kbuild::ExtractStats stats = extract_archive(deb, dir / "ours");
    run({"dpkg-deb", "-x", deb.string(), (dir / "dpkg").string()});

    expect_same_tree(dir / "ours", dir / "dpkg");
    EXPECT_GT(stats.entries, 10);
    EXPECT_GE(stats.bytes, 300000);
    EXPECT_FALSE(fs::exists(dir / "ours/DEBIAN"));
}

// "none" gives an uncompressed data.tar member.
INSTANTIATE_TEST_SUITE_P(Archive, DebCompression, testing::Values("xz", "gzip", "zstd", "none"));

TEST(Archive, ControlMemberGivesTheControlFile) {
    TempDir dir;
    make_header_tree(dir / "tree", "pkg");
    make_control(dir / "tree", "pkg");
    const fs::path deb = build_deb(dir / "tree", dir / "pkg.deb", "xz");

    extract_archive(deb, dir / "control", DebMember::control);

    EXPECT_EQ(read_file(dir / "control/control"), read_file(dir / "tree/DEBIAN/control"));
    EXPECT_FALSE(fs::exists(dir / "control/usr"));
}

TEST(Archive, ControlOfANonDebIsAnError) {
    TempDir dir;
    write_file(dir / "tree/a", "a\n");
    run({"tar", "-C", (dir / "tree").string(), "-czf", (dir / "a.tgz").string(), "a"});
    EXPECT_EQ(extract_error(dir / "a.tgz", dir / "out", DebMember::control),
              (dir / "a.tgz").string() + ": not a .deb, so it has no control member");
}

TEST(Archive, KeepsSymlinksAsSymlinksWithTheirTargetText) {
    TempDir dir;
    make_header_tree(dir / "tree", "pkg");
    make_control(dir / "tree", "pkg");
    const fs::path deb = build_deb(dir / "tree", dir / "pkg.deb", "xz");

    extract_archive(deb, dir / "out");

    const fs::path src = dir / "out/usr/src/pkg";
    ASSERT_TRUE(fs::is_symlink(src / "tools"));
    EXPECT_EQ(fs::read_symlink(src / "tools"), "../../lib/linux-kbuild-6.1/tools");
    ASSERT_TRUE(fs::is_symlink(dir / "out/build"));
    EXPECT_EQ(fs::read_symlink(dir / "out/build"), "/usr/src/pkg");
    ASSERT_TRUE(fs::is_symlink(src / "version.h"));
    EXPECT_EQ(read_file(src / "version.h"), "#define LINUX_VERSION_CODE 393472\n");
}

TEST(Archive, TwoDebsMergeIntoOneRoot) {
    TempDir dir;
    make_header_tree(dir / "amd64", "linux-headers-amd64");
    make_control(dir / "amd64", "linux-headers-amd64");
    make_header_tree(dir / "common", "linux-headers-common");
    make_control(dir / "common", "linux-headers-common");
    const fs::path amd64 = build_deb(dir / "amd64", dir / "amd64.deb", "xz");
    const fs::path common = build_deb(dir / "common", dir / "common.deb", "zstd");

    extract_archive(amd64, dir / "ours");
    extract_archive(common, dir / "ours");
    run({"dpkg-deb", "-x", amd64.string(), (dir / "dpkg").string()});
    run({"dpkg-deb", "-x", common.string(), (dir / "dpkg").string()});

    expect_same_tree(dir / "ours", dir / "dpkg");
    EXPECT_TRUE(fs::exists(dir / "ours/usr/src/linux-headers-amd64/Makefile"));
    EXPECT_TRUE(fs::exists(dir / "ours/usr/src/linux-headers-common/Makefile"));
}

// libarchive sets the umask to 0 and back for every entry; concurrent extractions must not
// leave it at 0.
TEST(Archive, ConcurrentExtractionsKeepTheUmask) {
    TempDir dir;
    for (int i = 0; i < 3000; ++i) {  // enough entries for the threads' headers to interleave
        write_file(dir / "tree/usr/include" / std::to_string(i % 30) / (std::to_string(i) + ".h"), "");
    }
    make_control(dir / "tree", "pkg");
    const fs::path deb = build_deb(dir / "tree", dir / "pkg.deb", "zstd");
    const mode_t before = ::umask(022);

    std::vector<std::thread> workers;
    for (int worker = 0; worker < 4; ++worker) {
        workers.emplace_back([&, worker] {
            for (int round = 0; round < 2; ++round) {
                extract_archive(deb, dir / ("out-" + std::to_string(worker)));
            }
        });
    }
    for (std::thread& worker : workers) worker.join();

    EXPECT_EQ(::umask(before), 022u);
}

TEST(Archive, ReadsTarballsOfEveryCompressionByContentNotName) {
    TempDir dir;
    make_header_tree(dir / "tree", "pkg");
    const std::vector<std::vector<std::string>> compressors = {{}, {"--gzip"}, {"--xz"}, {"--zstd"}, {"--bzip2"}};
    for (const auto& compressor : compressors) {
        const std::string label = compressor.empty() ? "plain" : compressor[0];
        const fs::path tarball = dir / ("payload-" + label + ".bin");  // no telling extension
        std::vector<std::string> argv = {"tar", "-C", (dir / "tree").string()};
        argv.insert(argv.end(), compressor.begin(), compressor.end());
        argv.insert(argv.end(), {"-cf", tarball.string(), "."});
        run(argv);

        const fs::path out = dir / ("out-" + label);
        const fs::path reference = dir / ("tar-" + label);
        extract_archive(tarball, out);
        fs::create_directories(reference);
        run({"tar", "-C", reference.string(), "-xf", tarball.string()});
        SCOPED_TRACE(label);
        expect_same_tree(out, reference);
    }
}

// rpmbuild (Debian package `rpm`) makes the rpms; payload compressions as distros use them.
class RpmCompression : public testing::TestWithParam<std::string> {};

TEST_P(RpmCompression, ContentsMatchTheTreeItWasBuiltFrom) {
    TempDir dir;
    make_header_tree(dir / "tree", "kernel-devel");
    fs::create_hard_link(dir / "tree/usr/src/kernel-devel/Makefile",
                         dir / "tree/usr/src/kernel-devel/Makefile.hardlink");
    write_file(dir / "kernel-devel.spec",
               "Name: kernel-devel\nVersion: 1.0\nRelease: 1\nSummary: archive test\n"
               "License: MIT\nBuildArch: noarch\n%description\narchive test\n"
               "%install\ncp -a %{tree}/. %{buildroot}/\n%files\n/usr\n/build\n");
    run({"rpmbuild", "-bb", "--nodeps", "--quiet", "--define", "_topdir " + (dir / "top").string(), "--define",
         "tree " + (dir / "tree").string(), "--define", "__os_install_post %{nil}", "--define", "_build_id_links none",
         "--define", "_binary_payload " + GetParam(), (dir / "kernel-devel.spec").string()});
    const fs::path rpm = dir / "top/RPMS/noarch/kernel-devel-1.0-1.noarch.rpm";

    extract_archive(rpm, dir / "out");

    const kbuild::ProcessResult diff =
        run_process({"diff", "-r", "--no-dereference", (dir / "out").string(), (dir / "tree").string()});
    EXPECT_EQ(diff.exit_code, 0) << diff.out << diff.err;
    const fs::path src = dir / "out/usr/src/kernel-devel";
    EXPECT_EQ(fs::read_symlink(src / "tools"), "../../lib/linux-kbuild-6.1/tools");
    EXPECT_TRUE(fs::equivalent(src / "Makefile", src / "Makefile.hardlink"));
    EXPECT_EQ(fs::status(src / "scripts/basic/fixdep").permissions(), fs::perms(0755));
}

INSTANTIATE_TEST_SUITE_P(Archive, RpmCompression, testing::Values("w6.xzdio", "w19.zstdio", "w9.gzdio"));

TEST(Archive, ReplacesExistingFiles) {
    TempDir dir;
    write_file(dir / "out/a/file", "old\n");
    fs::permissions(dir / "out/a/file", fs::perms::owner_read);
    write_tar(dir / "new.tar", {{"a/file", AE_IFREG, "new\n"}});

    extract_archive(dir / "new.tar", dir / "out");

    EXPECT_EQ(read_file(dir / "out/a/file"), "new\n");
}

TEST(Archive, CreatesDirectoriesAFileIsListedBefore) {
    TempDir dir;
    write_tar(dir / "late-dirs.tar", {{"a/b/file", AE_IFREG, "x\n"},
                                      {"a/b", AE_IFDIR, "", false, 0755},
                                      {"ro", AE_IFDIR, "", false, 0555},
                                      {"ro/file", AE_IFREG, "y\n"}});

    extract_archive(dir / "late-dirs.tar", dir / "out");

    EXPECT_EQ(read_file(dir / "out/a/b/file"), "x\n");
    EXPECT_EQ(read_file(dir / "out/ro/file"), "y\n");
    struct stat st {};
    ASSERT_EQ(::stat((dir / "out/a").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0700, 0700u);
    ASSERT_EQ(::stat((dir / "out/ro").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0700, 0700u) << "directories stay writable by their owner";
}

TEST(Archive, SkipsDevicesAndFifos) {
    TempDir dir;
    write_tar(dir / "special.tar", {{"dev/null", AE_IFCHR, "", false, 0666},
                                    {"dev/fifo", AE_IFIFO, "", false, 0644},
                                    {"file", AE_IFREG, "kept\n"}});

    const kbuild::ExtractStats stats = extract_archive(dir / "special.tar", dir / "out");

    EXPECT_FALSE(fs::exists(fs::symlink_status(dir / "out/dev/null")));
    EXPECT_FALSE(fs::exists(fs::symlink_status(dir / "out/dev/fifo")));
    EXPECT_EQ(read_file(dir / "out/file"), "kept\n");
    EXPECT_EQ(stats.entries, 1);
    EXPECT_EQ(stats.bytes, 5);
}

TEST(Archive, KeepsHardLinksInsideTheTree) {
    TempDir dir;
    write_tar(dir / "links.tar", {{"a/file", AE_IFREG, "same\n"}, {"b/link", AE_IFREG, "a/file", true}});

    extract_archive(dir / "links.tar", dir / "out");

    EXPECT_EQ(read_file(dir / "out/b/link"), "same\n");
    EXPECT_TRUE(fs::equivalent(dir / "out/b/link", dir / "out/a/file"));
}

// Each hostile entry is refused with one line naming the archive and the entry, and nothing
// lands outside the target.
TEST(Archive, RefusesADotDotEntry) {
    TempDir dir;
    const fs::path tar = dir / "dotdot.tar";
    write_tar(tar, {{"ok", AE_IFREG, "fine\n"}, {"../evil", AE_IFREG, "gotcha\n"}});

    EXPECT_EQ(extract_error(tar, dir / "out"), tar.string() + ": ../evil: path escapes the target");
    EXPECT_FALSE(fs::exists(dir / "evil"));
}

TEST(Archive, RefusesADotDotInTheMiddle) {
    TempDir dir;
    const fs::path tar = dir / "dotdot.tar";
    write_tar(tar, {{"a/../../evil", AE_IFREG, "gotcha\n"}});

    EXPECT_EQ(extract_error(tar, dir / "out"), tar.string() + ": a/../../evil: path escapes the target");
    EXPECT_FALSE(fs::exists(dir / "evil"));
}

TEST(Archive, RefusesAnAbsoluteEntry) {
    TempDir dir;
    const std::string evil = "/tmp/kbuild-archive-test-evil-" + std::to_string(::getpid());
    const fs::path tar = dir / "absolute.tar";
    write_tar(tar, {{evil, AE_IFREG, "gotcha\n"}});

    EXPECT_EQ(extract_error(tar, dir / "out"),
              tar.string() + ": " + evil + ": path is absolute: it escapes the target");
    EXPECT_FALSE(fs::exists(evil));
}

TEST(Archive, RefusesAPathThroughASymlinkInTheArchive) {
    TempDir dir;
    fs::create_directories(dir / "outside");
    const fs::path tar = dir / "through-link.tar";
    write_tar(tar, {{"link", AE_IFLNK, (dir / "outside").string()}, {"link/evil", AE_IFREG, "gotcha\n"}});

    EXPECT_EQ(extract_error(tar, dir / "out"), tar.string() + ": link/evil: path passes through the symlink link");
    EXPECT_FALSE(fs::exists(dir / "outside/evil"));
    EXPECT_TRUE(fs::is_symlink(dir / "out/link")) << "the symlink itself is kept";
}

TEST(Archive, RefusesADirectoryEntryThatIsASymlink) {
    TempDir dir;
    fs::create_directories(dir / "outside");
    const fs::path tar = dir / "through-link.tar";
    write_tar(tar, {{"link", AE_IFLNK, (dir / "outside").string()}, {"link", AE_IFDIR, "", false, 0777}});

    const fs::perms before = fs::status(dir / "outside").permissions();

    EXPECT_EQ(extract_error(tar, dir / "out"), tar.string() + ": link/: path passes through the symlink link");
    EXPECT_EQ(fs::status(dir / "outside").permissions(), before) << "outside is untouched";
}

TEST(Archive, RefusesAPathThroughASymlinkFromAnEarlierPackage) {
    TempDir dir;
    fs::create_directories(dir / "outside");
    write_tar(dir / "first.tar", {{"usr/lib", AE_IFLNK, (dir / "outside").string()}});
    const fs::path second = dir / "second.tar";
    write_tar(second, {{"usr/", AE_IFDIR, "", false, 0755}, {"usr/lib/passwd", AE_IFREG, "gotcha\n"}});

    extract_archive(dir / "first.tar", dir / "out");
    EXPECT_EQ(extract_error(second, dir / "out"),
              second.string() + ": usr/lib/passwd: path passes through the symlink usr/lib");
    EXPECT_FALSE(fs::exists(dir / "outside/passwd"));
}

TEST(Archive, ReplacesASymlinkFromAnEarlierPackageInsteadOfWritingThroughIt) {
    TempDir dir;
    write_file(dir / "outside/target", "untouched\n");
    write_tar(dir / "first.tar", {{"file", AE_IFLNK, (dir / "outside/target").string()}});
    write_tar(dir / "second.tar", {{"file", AE_IFREG, "replaced\n"}});

    extract_archive(dir / "first.tar", dir / "out");
    extract_archive(dir / "second.tar", dir / "out");

    EXPECT_FALSE(fs::is_symlink(dir / "out/file"));
    EXPECT_EQ(read_file(dir / "out/file"), "replaced\n");
    EXPECT_EQ(read_file(dir / "outside/target"), "untouched\n");
}

TEST(Archive, RefusesAHardLinkOutOfTheTree) {
    TempDir dir;
    write_file(dir / "secret", "secret\n");
    const fs::path tar = dir / "hardlink.tar";
    write_tar(tar, {{"steal", AE_IFREG, "../secret", true}});

    EXPECT_EQ(extract_error(tar, dir / "out"), tar.string() + ": steal: hard link target ../secret escapes the target");
    EXPECT_FALSE(fs::exists(dir / "out/steal"));
}

TEST(Archive, RefusesAHardLinkThroughASymlink) {
    TempDir dir;
    write_file(dir / "outside/secret", "secret\n");
    const fs::path tar = dir / "hardlink.tar";
    write_tar(tar, {{"link", AE_IFLNK, (dir / "outside").string()}, {"steal", AE_IFREG, "link/secret", true}});

    EXPECT_EQ(extract_error(tar, dir / "out"),
              tar.string() + ": steal: hard link target link/secret passes through the symlink link");
    EXPECT_FALSE(fs::exists(dir / "out/steal"));
}

TEST(Archive, RandomBytesAreAOneLineErrorNamingTheArchive) {
    TempDir dir;
    std::string noise(100000, '\0');
    std::mt19937 random(7);
    for (char& c : noise) c = static_cast<char>(random());
    write_file(dir / "noise.deb", noise);

    const std::string error = extract_error(dir / "noise.deb", dir / "out");
    EXPECT_EQ(error.rfind((dir / "noise.deb").string() + ": ", 0), 0u) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

// A .deb cut in the middle of data.tar, and one with bytes flipped inside it.
TEST(Archive, DamagedDebIsAOneLineErrorNamingTheArchive) {
    TempDir dir;
    make_header_tree(dir / "tree", "pkg");
    make_control(dir / "tree", "pkg");
    const fs::path deb = build_deb(dir / "tree", dir / "pkg.deb", "xz");
    const std::string bytes = read_file(deb);
    ASSERT_GT(bytes.size(), 100000u);

    write_file(dir / "truncated.deb", bytes.substr(0, bytes.size() * 6 / 10));
    std::string flipped = bytes;
    for (std::size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) flipped[i] ^= 0x5a;
    write_file(dir / "flipped.deb", flipped);

    for (const char* name : {"truncated.deb", "flipped.deb"}) {
        const std::string error = extract_error(dir / name, dir / "out");
        EXPECT_EQ(error.rfind((dir / name).string() + ": ", 0), 0u) << error;
        EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    }
}

TEST(Archive, MissingArchiveIsAnErrorNamingIt) {
    TempDir dir;
    EXPECT_EQ(extract_error(dir / "absent.deb", dir / "out"),
              (dir / "absent.deb").string() + ": cannot open: No such file or directory");
}

}  // namespace
