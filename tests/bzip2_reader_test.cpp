// Bzip2Reader against files the real bzip2 made: random reads equal the original bytes, at
// block sizes 100k and 900k, through runs that decode to ~45 MB blocks, across concatenated
// streams; cut and damaged copies are named; other files read raw through open_byte_source.
#include "unpack/bzip2_reader.h"
#include "test_util.h"
#include "util/process.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace fs = std::filesystem;
using kbuild::ByteSource;
using kbuild::Bzip2Magic;
using kbuild::Bzip2Reader;
using kbuild::test::read_file;
using kbuild::test::TempDir;
using kbuild::test::write_file;

namespace {

// Text lines, random bytes and runs in turn, the same for a seed: bzip2 shrinks it by about
// half, so a few MB make many 100k blocks.
std::string varied_data(std::size_t size, std::uint64_t seed) {
    static const char* const words[] = {"kernel", "module", "static", "struct", "return",   "#include",
                                        "linux",  "driver", "config", "void",   "unsigned", "0x"};
    std::mt19937_64 rng(seed);
    std::string out;
    out.reserve(size + 4096);
    while (out.size() < size) {
        switch (rng() % 4) {
            case 0:
            case 1:
                for (int line = 0; line < 20; ++line) {
                    for (int w = 0; w < 8; ++w) {
                        out += words[rng() % std::size(words)];
                        out += w % 3 == 2 ? std::to_string(rng() % 100000) : " ";
                    }
                    out += '\n';
                }
                break;
            case 2:
                for (std::uint64_t n = 200 + rng() % 3000; n > 0; --n) out += static_cast<char>(rng());
                break;
            default: out.append(5 + rng() % 300, static_cast<char>(rng()));
        }
    }
    out.resize(size);
    return out;
}

// `data` compressed by bzip2 at `level` into dir/name.
fs::path compress(const TempDir& dir, const std::string& name, const std::string& data, int level) {
    const fs::path plain = dir / (name + ".in");
    const fs::path packed = dir / name;
    write_file(plain, data);
    const kbuild::ProcessResult r = kbuild::run_process(
        {"sh", "-c", "bzip2 -" + std::to_string(level) + " -c \"$0\" > \"$1\"", plain.string(), packed.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    fs::remove(plain);
    return packed;
}

std::string read_at(ByteSource& source, std::uint64_t offset, std::size_t len) {
    std::string out(len, '\0');
    out.resize(source.read(offset, out.data(), len));
    return out;
}

// What a read of `len` at `offset` of `data` must give.
std::string expected(const std::string& data, std::uint64_t offset, std::size_t len) {
    return offset >= data.size() ? "" : data.substr(offset, len);
}

// Random reads anywhere (across blocks, up to and past the end), then the whole in order.
void expect_same_bytes(ByteSource& source, const std::string& data, int reads, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const std::uint64_t size = data.size();
    for (int i = 0; i < reads; ++i) {
        const std::uint64_t offset = rng() % (size + 1000);
        const std::size_t len = rng() % 4 == 0 ? rng() % 700000 : rng() % 5000;
        ASSERT_EQ(read_at(source, offset, len), expected(data, offset, len))
            << source.name() << ": read of " << len << " at " << offset;
    }
    std::string whole;
    for (std::uint64_t offset = 0;; offset += 65536) {
        const std::string chunk = read_at(source, offset, 65536);
        if (chunk.empty()) break;
        whole += chunk;
    }
    EXPECT_TRUE(whole == data) << source.name() << ": read in order differs";
    EXPECT_EQ(source.size(), size);
    EXPECT_EQ(read_at(source, size, 10), "");
    EXPECT_EQ(read_at(source, size + 12345, 10), "");
    EXPECT_EQ(read_at(source, UINT64_MAX - 3, 10), "");
}

Bzip2Reader::Options threads(unsigned n, std::size_t cache_bytes = std::size_t{256} << 20) {
    Bzip2Reader::Options options;
    options.threads = n;
    options.cache_bytes = cache_bytes;
    return options;
}

// The message of what `f` throws ("" when it does not).
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const kbuild::Error& e) {
        return e.what();
    }
    return "";
}

TEST(Bzip2Reader, ReadsAnywhereAtBlockSize100k) {
    TempDir dir;
    const std::string data = varied_data(2 << 20, 1);
    const fs::path file = compress(dir, "level1.bz2", data, 1);
    Bzip2Reader reader(file.string(), threads(2));
    EXPECT_GT(reader.block_count(), 15u);  // 100k of input each
    EXPECT_EQ(reader.name(), file.string());
    expect_same_bytes(reader, data, 300, 7);
}

TEST(Bzip2Reader, ReadsAnywhereAtBlockSize900k) {
    TempDir dir;
    const std::string data = varied_data(5 << 19, 2);
    const fs::path file = compress(dir, "level9.bz2", data, 9);
    Bzip2Reader reader(file.string(), threads(3));
    EXPECT_EQ(reader.block_count(), 3u);  // 900k of input each
    expect_same_bytes(reader, data, 200, 8);
}

// A cache smaller than a block keeps only the newest: every read still gets its bytes.
TEST(Bzip2Reader, ReadsWithATinyCacheAndOneThread) {
    TempDir dir;
    const std::string data = varied_data(1 << 20, 3);
    const fs::path file = compress(dir, "small-cache.bz2", data, 1);
    Bzip2Reader reader(file.string(), threads(1, 1000));
    expect_same_bytes(reader, data, 40, 9);
}

// Runs of zeros: bzip2's first run-length pass packs ~45 MB into one 900k block.
TEST(Bzip2Reader, ReadsBlocksThatDecodeLarge) {
    TempDir dir;
    std::string data(50 << 20, '\0');
    for (std::size_t at = 12345; at < data.size(); at += 3 << 20) data.replace(at, 9, "kbuild:-)");
    const fs::path file = compress(dir, "zeros.bz2", data, 9);
    EXPECT_LT(fs::file_size(file), 10000u);
    Bzip2Reader reader(file.string(), threads(2));
    EXPECT_EQ(reader.block_count(), 2u);
    EXPECT_EQ(reader.size(), data.size());
    expect_same_bytes(reader, data, 60, 10);
}

// `cat a.bz2 empty.bz2 b.bz2`, as pbzip2 and lbzip2 also write: one file of three streams.
TEST(Bzip2Reader, ReadsConcatenatedStreams) {
    TempDir dir;
    const std::string a = varied_data(700000, 4);
    const std::string b = varied_data(1500000, 5);
    const fs::path fa = compress(dir, "a.bz2", a, 1);
    const fs::path fe = compress(dir, "empty.bz2", "", 9);
    const fs::path fb = compress(dir, "b.bz2", b, 9);
    const fs::path joined = dir / "joined.bz2";
    write_file(joined, read_file(fa) + read_file(fe) + read_file(fb));
    Bzip2Reader reader(joined.string(), threads(2));
    expect_same_bytes(reader, a + b, 150, 11);
}

TEST(Bzip2Reader, ReadsTinyAndEmptyFiles) {
    TempDir dir;
    const fs::path tiny = compress(dir, "tiny.bz2", "hi\n", 9);
    Bzip2Reader reader(tiny.string());
    EXPECT_EQ(reader.size(), 3u);
    EXPECT_EQ(read_at(reader, 0, 100), "hi\n");
    EXPECT_EQ(read_at(reader, 1, 1), "i");
    EXPECT_EQ(read_at(reader, 3, 1), "");
    EXPECT_EQ(read_at(reader, 2, 0), "");

    const fs::path empty = compress(dir, "empty.bz2", "", 9);
    Bzip2Reader nothing(empty.string());
    EXPECT_EQ(nothing.block_count(), 0u);
    EXPECT_EQ(read_at(nothing, 0, 100), "");
    EXPECT_EQ(nothing.size(), 0u);
}

// Compressed data may hold a magic by chance (2^-48 a bit): the block it cuts short fails, and
// decodes once it runs on to the next magic.
TEST(Bzip2Reader, MergesAFalseMagicIntoItsBlock) {
    TempDir dir;
    const std::string a = varied_data(1 << 20, 6);
    const std::string b = varied_data(1 << 20, 7);
    const fs::path fa = compress(dir, "a.bz2", a, 1);
    const fs::path fb = compress(dir, "b.bz2", b, 1);
    const fs::path joined = dir / "joined.bz2";
    write_file(joined, read_file(fa) + read_file(fb));
    Bzip2Reader::Options options = threads(2);
    options.test_false_magics = true;
    Bzip2Reader reader(joined.string(), options);
    const std::size_t with_false = reader.block_count();
    EXPECT_EQ(reader.size(), a.size() + b.size());
    EXPECT_LT(reader.block_count(), with_false);  // the false block magics went
    EXPECT_EQ(reader.block_count(), Bzip2Reader(joined.string()).block_count());
    expect_same_bytes(reader, a + b, 50, 12);
}

TEST(Bzip2Reader, NamesTheBlockACutFileEndsIn) {
    TempDir dir;
    const std::string data = varied_data(2 << 20, 8);
    const std::string packed = read_file(compress(dir, "whole.bz2", data, 1));
    const fs::path cut = dir / "cut.bz2";
    write_file(cut, packed.substr(0, packed.size() / 2));
    Bzip2Reader reader(cut.string(), threads(2));
    // The first blocks are whole: their bytes read.
    EXPECT_EQ(read_at(reader, 0, 150000), data.substr(0, 150000));
    EXPECT_EQ(read_at(reader, 12345, 10), data.substr(12345, 10));
    const std::string error = error_of([&] { read_at(reader, data.size() - 10, 10); });
    EXPECT_NE(error.find(cut.string() + ": truncated: the bzip2 data ends inside block "), std::string::npos) << error;
    EXPECT_NE(error.find("(compressed byte "), std::string::npos) << error;
    EXPECT_EQ(error_of([&] { reader.size(); }), error);
    EXPECT_EQ(read_at(reader, 100, 10), data.substr(100, 10));  // still readable after
}

TEST(Bzip2Reader, NamesACutEndOfStream) {
    TempDir dir;
    const std::string packed = read_file(compress(dir, "whole.bz2", "hello\n", 9));
    const fs::path cut = dir / "cut.bz2";
    write_file(cut, packed.substr(0, packed.size() - 3));  // inside the combined CRC
    Bzip2Reader reader(cut.string());
    EXPECT_EQ(read_at(reader, 0, 6), "hello\n");
    EXPECT_NE(error_of([&] { reader.size(); }).find(cut.string() + ": truncated: "), std::string::npos);
}

// `cat a.bz2 b.bz2` cut inside b's "BZh9" and first block magic: a's bytes read, the end is named.
TEST(Bzip2Reader, NamesACutStreamHeader) {
    TempDir dir;
    const std::string a = varied_data(200000, 14);
    const std::string packed =
        read_file(compress(dir, "a.bz2", a, 9)) + read_file(compress(dir, "b.bz2", "more\n", 9)).substr(0, 6);
    const fs::path cut = dir / "cut.bz2";
    write_file(cut, packed);
    Bzip2Reader reader(cut.string());
    EXPECT_EQ(read_at(reader, 100, 100000), a.substr(100, 100000));
    EXPECT_NE(error_of([&] {
                  reader.size();
              }).find(cut.string() + ": truncated: the bzip2 data ends inside the header of a stream"),
              std::string::npos);
}

TEST(Bzip2Reader, NamesADamagedBlock) {
    TempDir dir;
    const std::string data = varied_data(2 << 20, 9);
    std::string packed = read_file(compress(dir, "whole.bz2", data, 1));
    const std::size_t flip = packed.size() / 2;
    packed[flip] = static_cast<char>(packed[flip] ^ 0x55);
    const fs::path damaged = dir / "damaged.bz2";
    write_file(damaged, packed);
    Bzip2Reader reader(damaged.string(), threads(2));
    EXPECT_EQ(read_at(reader, 0, 1000), data.substr(0, 1000));
    const std::string error = error_of([&] { reader.size(); });
    const std::string prefix = damaged.string() + ": bzip2 block ";
    ASSERT_EQ(error.rfind(prefix, 0), 0u) << error;
    // "<file>: bzip2 block N at compressed byte B: data error...": B is where the block starts,
    // at most 100k before the damaged byte.
    const std::size_t at = error.find(" at compressed byte ");
    ASSERT_NE(at, std::string::npos) << error;
    const std::uint64_t block = std::stoull(error.substr(prefix.size()));
    const std::uint64_t byte = std::stoull(error.substr(at + 20));
    EXPECT_GT(block, 1u);
    EXPECT_LE(byte, flip);
    EXPECT_GT(byte + 100000, flip);
    EXPECT_NE(error.find(": data error"), std::string::npos) << error;
    EXPECT_EQ(error_of([&] { read_at(reader, data.size() - 100, 10); }), error);
}

TEST(Bzip2Reader, RefusesAFileThatIsNotBzip2) {
    TempDir dir;
    write_file(dir / "plain", "BZh9 but no block magic after it");
    EXPECT_EQ(error_of([&] { Bzip2Reader((dir / "plain").string()); }),
              (dir / "plain").string() + ": not a bzip2 file");
    EXPECT_NE(
        error_of([&] { Bzip2Reader((dir / "missing").string()); }).find((dir / "missing").string() + ": cannot open: "),
        std::string::npos);
}

TEST(Bzip2Reader, OpensOtherFilesAsRawBytes) {
    TempDir dir;
    const std::string data = varied_data(300000, 10);
    write_file(dir / "image.raw", data);
    const auto raw = kbuild::open_byte_source((dir / "image.raw").string());
    EXPECT_EQ(dynamic_cast<Bzip2Reader*>(raw.get()), nullptr);
    EXPECT_EQ(raw->name(), (dir / "image.raw").string());
    expect_same_bytes(*raw, data, 100, 13);

    for (const std::string small : {"", "BZh", "BZh9 garbage"}) {
        write_file(dir / "small", small);
        const auto source = kbuild::open_byte_source((dir / "small").string());
        EXPECT_EQ(source->size(), small.size());
        EXPECT_EQ(read_at(*source, 0, 100), small);
    }

    const fs::path packed = compress(dir, "image.bz2", data, 1);
    const auto decoded = kbuild::open_byte_source(packed.string());
    EXPECT_NE(dynamic_cast<Bzip2Reader*>(decoded.get()), nullptr);
    EXPECT_EQ(read_at(*decoded, 1000, 200000), data.substr(1000, 200000));

    EXPECT_NE(error_of([&] {
                  kbuild::open_byte_source((dir / "missing").string());
              }).find((dir / "missing").string() + ": cannot open: "),
              std::string::npos);
}

// The destructor drops queued read-ahead and joins the workers mid-decode.
TEST(Bzip2Reader, StopsWithWorkQueued) {
    TempDir dir;
    const std::string data = varied_data(3 << 19, 11);
    const fs::path file = compress(dir, "queued.bz2", data, 1);
    for (int i = 0; i < 10; ++i) {
        Bzip2Reader reader(file.string(), threads(2));
        char buf[100];
        reader.read(0, buf, sizeof buf);
        reader.read(150000, buf, sizeof buf);  // sequential: the next blocks are queued
    }
    Bzip2Reader unused(file.string(), threads(4));
}

// The scan against a bit-by-bit search, with magics planted at every shift, back to back, and
// in the last bits of the data.
TEST(Bzip2Reader, FindsMagicsAtEveryBitOffset) {
    std::mt19937_64 rng(12);
    std::vector<unsigned char> data(200000);
    for (auto& byte : data) byte = static_cast<unsigned char>(rng());
    const auto plant = [&](std::uint64_t bit, std::uint64_t magic) {
        for (int i = 0; i < 48; ++i, ++bit) {
            const unsigned char mask = static_cast<unsigned char>(0x80 >> (bit % 8));
            if ((magic >> (47 - i)) & 1)
                data[bit / 8] |= mask;
            else
                data[bit / 8] &= static_cast<unsigned char>(~mask);
        }
    };
    const std::uint64_t bits = 8 * data.size();
    for (std::uint64_t bit = 3; bit < bits - 48; bit += 997 + rng() % 20000)
        plant(bit, rng() % 2 ? 0x314159265359 : 0x177245385090);
    plant(100000 * 8 + 5, 0x314159265359);
    plant(100000 * 8 + 5 + 48, 0x177245385090);  // right after another
    plant(bits - 48, 0x177245385090);            // ends with the data
    plant(bits - 48 - 8 * 7 - 3, 0x314159265359);

    std::vector<Bzip2Magic> naive;
    std::uint64_t window = 0;
    for (std::uint64_t bit = 0; bit < bits; ++bit) {
        window = ((window << 1) | ((data[bit / 8] >> (7 - bit % 8)) & 1)) & 0xFFFFFFFFFFFF;
        if (bit < 47) continue;
        if (window == 0x314159265359) naive.push_back({bit - 47, false});
        if (window == 0x177245385090) naive.push_back({bit - 47, true});
    }
    EXPECT_GT(naive.size(), 20u);
    EXPECT_EQ(kbuild::find_bzip2_magics(data.data(), data.size()), naive);
    // The same data's last bytes alone: only the magics wholly inside them, shifted.
    for (const std::size_t size : {0, 5, 6, 7, 13, 20}) {
        const std::vector<unsigned char> tail(data.end() - static_cast<std::ptrdiff_t>(size), data.end());
        std::vector<Bzip2Magic> want;
        for (const Bzip2Magic& m : naive)
            if (m.bit >= bits - 8 * size) want.push_back({m.bit - (bits - 8 * size), m.end});
        EXPECT_EQ(kbuild::find_bzip2_magics(tail.data(), tail.size()), want) << size;
    }
}

}  // namespace
