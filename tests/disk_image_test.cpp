// Reading subtrees out of disk images in process: real ext4 file systems made by mkfs.ext4 -d
// (no mount), inside real GPTs made by sfdisk, bzip2-compressed by bzip2; and the broken ones a
// user may be handed.
#include "unpack/disk_image.h"
#include "test_util.h"
#include "unpack/byte_source.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>
#include <boost/crc.hpp>

#include <fstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

void run(const std::vector<std::string>& argv) {
    const ProcessResult r = run_process(argv);
    ASSERT_EQ(r.exit_code, 0) << argv[0] << ": " << r.err << r.out;
}

// A small root: a kernel build tree with the links a real one has, beside other files.
fs::path make_root(const fs::path& dir, bool escaping_link = false) {
    const fs::path root = dir / "root";
    const fs::path build = root / "usr/lib/modules/6.1.76-flatcar/build";
    test::write_file(build / "Makefile", "obj-m += hello.o\n");
    test::write_file(build / ".config", "# Linux/x86 6.1.76 Kernel Configuration\nCONFIG_LOCALVERSION=\"-flatcar\"\n");
    test::write_file(build / "include/config/kernel.release", "6.1.76-flatcar\n");
    std::string big(3 << 20, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
    test::write_file(build / "Module.symvers", big);
    test::write_file(root / "usr/lib/modules/6.1.76-flatcar/source/Kconfig", "mainmenu \"Linux\"\n");
    test::write_file(root / "usr/share/other/file", "not asked for\n");
    fs::create_symlink("../source", build / "source");                                        // relative, inside
    fs::create_symlink("/usr/lib/modules/6.1.76-flatcar/source/Kconfig", build / "Kconfig");  // absolute, inside
    fs::create_symlink("lib", root / "usr/lib64");                                            // a link on the way
    fs::permissions(build / "Makefile", fs::perms(0750));
    if (escaping_link) fs::create_symlink("../../../../../../../etc/passwd", build / "include/escape");
    return root;
}

fs::path make_ext4(const fs::path& dir, const fs::path& root, const std::string& name = "fs.ext4") {
    const fs::path image = dir / name;
    run({"mkfs.ext4", "-q", "-F", "-d", root.string(), "-E", "root_owner=0:0", image.string(), "32M"});
    return image;
}

// A GPT disk of one partition (from 1 MiB) holding `fs`, as sfdisk writes it.
fs::path make_gpt(const fs::path& dir, const fs::path& fs_image, const std::string& name = "disk.img") {
    const fs::path disk = dir / name;
    const auto fs_size = fs::file_size(fs_image);
    { std::ofstream(disk, std::ios::binary); }
    fs::resize_file(disk, (1 << 20) + fs_size + (1 << 20));
    const ProcessResult r = run_process({"sh", "-c",
                                         "printf 'label: gpt\\nstart=2048, size=" + std::to_string(fs_size / 512) +
                                             ", type=L\\n' | sfdisk -q " + disk.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    run({"dd", "if=" + fs_image.string(), "of=" + disk.string(), "bs=1M", "seek=1", "conv=notrunc,sparse",
         "status=none"});
    return disk;
}

fs::path bzip2(const fs::path& file) {
    run({"bzip2", "-k", "-1", "-f", file.string()});
    return file.string() + ".bz2";
}

std::string extract_error(const fs::path& image, const fs::path& dest, const std::vector<std::string>& patterns) {
    try {
        extract_from_image(image, dest, patterns);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

void expect_build_tree(const fs::path& dest, const fs::path& root) {
    const fs::path build = "usr/lib/modules/6.1.76-flatcar/build";
    EXPECT_EQ(test::read_file(dest / build / "Module.symvers"), test::read_file(root / build / "Module.symvers"));
    EXPECT_EQ(test::read_file(dest / build / "include/config/kernel.release"), "6.1.76-flatcar\n");
    EXPECT_EQ(fs::status(dest / build / "Makefile").permissions() & fs::perms::all, fs::perms(0750));
    EXPECT_EQ(fs::read_symlink(dest / build / "source"), "../source");
    EXPECT_EQ(fs::read_symlink(dest / build / "Kconfig"), "/usr/lib/modules/6.1.76-flatcar/source/Kconfig");
    EXPECT_FALSE(fs::exists(dest / "usr/share/other"));
}

TEST(DiskImage, ABareExt4FileSystemGivesTheSubtreesAskedFor) {
    test::TempDir dir;
    const fs::path root = make_root(dir.path());
    const fs::path image = make_ext4(dir.path(), root);
    const fs::path dest = dir / "out";
    const ImageExtractStats stats =
        extract_from_image(image, dest, {"usr/lib/modules/*/build", "usr/lib/modules/*/source", "usr/src/*"});
    expect_build_tree(dest, root);
    EXPECT_EQ(test::read_file(dest / "usr/lib/modules/6.1.76-flatcar/source/Kconfig"), "mainmenu \"Linux\"\n");
    EXPECT_EQ(stats.matched, (std::vector<std::string>{"usr/lib/modules/6.1.76-flatcar/build",
                                                       "usr/lib/modules/6.1.76-flatcar/source"}));
    EXPECT_EQ(stats.where, "the whole image");
    EXPECT_GE(stats.bytes, 3 << 20);
}

// Flatcar's source -> build: a link to a tree already taken adds the link, not a second copy.
TEST(DiskImage, ATreeReachedTwiceIsCopiedOnce) {
    test::TempDir dir;
    const fs::path root = make_root(dir.path());
    fs::create_symlink("build", root / "usr/lib/modules/6.1.76-flatcar/alias");
    const fs::path image = make_ext4(dir.path(), root);
    const auto once = extract_from_image(image, dir / "once", {"usr/lib/modules/*/build"});
    const auto twice = extract_from_image(image, dir / "twice", {"usr/lib/modules/*/build", "usr/lib/modules/*/alias"});
    EXPECT_EQ(twice.entries, once.entries + 1);
    EXPECT_EQ(twice.bytes, once.bytes);
    EXPECT_EQ(fs::read_symlink(dir / "twice/usr/lib/modules/6.1.76-flatcar/alias"), "build");
}

// What a 300 s fuzzing run found (a stack overflow): a damaged file system whose directory is
// linked below itself. Made here with debugfs, which links a directory as it is told.
TEST(DiskImage, ADirectoryLinkedBelowItselfIsRefusedNotFollowedForEver) {
    test::TempDir dir;
    const fs::path root = make_root(dir.path());
    const fs::path image = make_ext4(dir.path(), root);
    run({"debugfs", "-w", "-R",
         "ln /usr/lib/modules/6.1.76-flatcar/build /usr/lib/modules/6.1.76-flatcar/build/include/loop",
         image.string()});
    const std::string error = extract_error(image, dir / "out", {"usr/lib/modules/*/build"});
    EXPECT_NE(error.find(image.string() + ": /usr/lib/modules/6.1.76-flatcar/build/include/loop: directory inode "),
              std::string::npos)
        << error;
    EXPECT_NE(error.find(" is linked more than once (a damaged file system)"), std::string::npos) << error;
}

TEST(DiskImage, ACompressedGptDiskIsReadWithoutDecompressingIt) {
    test::TempDir dir;
    const fs::path root = make_root(dir.path());
    const fs::path disk = bzip2(make_gpt(dir.path(), make_ext4(dir.path(), root)));
    fs::remove(dir / "disk.img");
    const fs::path dest = dir / "out";
    // Through the link usr/lib64 -> lib: the link is made, the tree lands at its real path.
    const ImageExtractStats stats = extract_from_image(disk, dest, {"usr/lib64/modules/*/build"});
    EXPECT_EQ(stats.where, "GPT partition 1");
    EXPECT_EQ(stats.matched, std::vector<std::string>{"usr/lib64/modules/6.1.76-flatcar/build"});
    EXPECT_EQ(fs::read_symlink(dest / "usr/lib64"), "lib");
    expect_build_tree(dest, root);
    // Nothing else was written beside the output: no decompressed copy of the disk.
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir.path())) files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
    EXPECT_EQ(files, (std::vector<std::string>{"disk.img.bz2", "fs.ext4", "out", "root"}));
}

TEST(DiskImage, ASymlinkLeadingOutOfTheImageIsRefused) {
    test::TempDir dir;
    const fs::path image = make_ext4(dir.path(), make_root(dir.path(), /*escaping_link=*/true));
    const std::string error = extract_error(image, dir / "out", {"usr/lib/modules/*/build"});
    EXPECT_EQ(error, image.string() +
                         ": /usr/lib/modules/6.1.76-flatcar/build/include/escape: symlink to "
                         "../../../../../../../etc/passwd leads out of the image");
}

TEST(DiskImage, AnImageWithoutExt4SaysSo) {
    test::TempDir dir;
    const fs::path blank = dir / "blank";
    { std::ofstream(blank, std::ios::binary); }
    fs::resize_file(blank, 8 << 20);
    const fs::path disk = make_gpt(dir.path(), blank);
    EXPECT_EQ(extract_error(disk, dir / "out", {"usr"}),
              disk.string() + ": no ext2/3/4 file system in its 1 GPT partition");
    EXPECT_EQ(extract_error(blank, dir / "out", {"usr"}),
              blank.string() + ": no partition table and no ext2/3/4 file system");
}

// A well-formed GPT that lies: its partition ends past the disk's last usable LBA, CRCs
// recomputed, as a corrupted or hand-made image might be.
TEST(DiskImage, APartitionPastTheDisksEndIsRefused) {
    test::TempDir dir;
    const fs::path disk = make_gpt(dir.path(), make_ext4(dir.path(), make_root(dir.path())));
    std::fstream file(disk, std::ios::in | std::ios::out | std::ios::binary);
    std::vector<unsigned char> header(512), entries(128 * 128);
    file.seekg(512).read(reinterpret_cast<char*>(header.data()), 512);
    file.seekg(1024).read(reinterpret_cast<char*>(entries.data()), static_cast<std::streamsize>(entries.size()));
    const std::uint64_t past = fs::file_size(disk) / 512 + 100;
    for (int i = 0; i < 8; ++i) entries[40 + i] = static_cast<unsigned char>(past >> (8 * i));
    auto put32 = [](unsigned char* p, std::uint32_t v) {
        for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
    };
    boost::crc_32_type entries_crc;
    entries_crc.process_bytes(entries.data(), entries.size());
    put32(&header[88], entries_crc.checksum());
    put32(&header[16], 0);
    boost::crc_32_type header_crc;
    header_crc.process_bytes(header.data(), 92);
    put32(&header[16], header_crc.checksum());
    file.seekp(512).write(reinterpret_cast<char*>(header.data()), 512);
    file.seekp(1024).write(reinterpret_cast<char*>(entries.data()), static_cast<std::streamsize>(entries.size()));
    file.close();
    const std::string error = extract_error(disk, dir / "out", {"usr"});
    EXPECT_NE(error.find(disk.string() + ": GPT partition 1 (LBA 2048-" + std::to_string(past) +
                         ") ends past the disk's last usable LBA"),
              std::string::npos)
        << error;
}

TEST(DiskImage, ATruncatedCompressedImageIsNamed) {
    test::TempDir dir;
    const fs::path disk = bzip2(make_gpt(dir.path(), make_ext4(dir.path(), make_root(dir.path()))));
    fs::resize_file(disk, fs::file_size(disk) / 2);
    const std::string error = extract_error(disk, dir / "out", {"usr/lib/modules/*/build"});
    EXPECT_EQ(error.rfind(disk.string() + ": ", 0), 0u) << error;
    EXPECT_NE(error.find("truncated"), std::string::npos) << error;
}

}  // namespace
