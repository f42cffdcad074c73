#include "unpack/bzip2_reader.h"

#include "util/fd.h"
#include "util/strings.h"

#include <kbuild/types.hpp>

#include <bzlib.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace kbuild {
namespace {

constexpr std::uint64_t kBlockMagic = 0x314159265359;
constexpr std::uint64_t kEndMagic = 0x177245385090;
constexpr std::uint64_t kMask48 = (std::uint64_t{1} << 48) - 1;
constexpr std::uint64_t kMagicBits = 48;
constexpr std::uint64_t kBlockHeaderBits = kMagicBits + 32;  // the magic and the block's CRC

std::uint64_t load_be64(const unsigned char* p) {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return __builtin_bswap64(v);
}

// A magic starting at bit s (0..7) of byte i spans bytes i..i+6, and bytes i+1..i+5 are wholly
// the magic's. Their 2-byte pairs, for the 16 (shift, magic) pairs, make a filter of 64 keys
// that lets through 1 random position in 1024. A magic starting in bytes i..i+3 puts one of
// those keys at bytes i+4, i+5: one look-up there clears four start bytes, and only the rare
// survivors are matched in full.
class MagicFilter {
public:
    MagicFilter() {
        for (const std::uint64_t magic : {kBlockMagic, kEndMagic})
            for (int shift = 0; shift < 8; ++shift)
                for (int byte = 1; byte <= 4; ++byte) {
                    const unsigned key = ((magic << (16 - shift)) >> (48 - 8 * byte)) & 0xFFFF;
                    bits_[key >> 6] |= std::uint64_t{1} << (key & 63);
                }
    }
    bool passes(unsigned key) const { return (bits_[key >> 6] >> (key & 63)) & 1; }

private:
    std::array<std::uint64_t, 1024> bits_{};
};

const MagicFilter kFilter;

// Magics starting at the 8 bits from `first_bit`, `window` holding the 64 bits from there;
// none may run past `limit_bit`.
void match_window(std::uint64_t window, std::uint64_t first_bit, std::uint64_t limit_bit,
                  std::vector<Bzip2Magic>& out) {
    for (int shift = 0; shift < 8; ++shift) {
        const std::uint64_t v = (window >> (16 - shift)) & kMask48;
        if ((v == kBlockMagic || v == kEndMagic) && first_bit + shift + kMagicBits <= limit_bit)
            out.push_back({first_bit + shift, v == kEndMagic});
    }
}

// The magics starting in bytes [from, to) of data[0, size).
void scan_range(const unsigned char* data, std::size_t size, std::size_t from, std::size_t to,
                std::vector<Bzip2Magic>& out) {
    const std::uint64_t limit = std::uint64_t{8} * size;
    std::size_t i = from;
    for (; i + 4 <= to && i + 11 <= size; i += 4) {  // 8 bytes readable from i+3
        const unsigned key = unsigned{data[i + 4]} << 8 | data[i + 5];
        if (!kFilter.passes(key)) continue;
        for (std::size_t c = i; c < i + 4; ++c) match_window(load_be64(data + c), 8 * c, limit, out);
    }
    for (; i < to; ++i) {
        unsigned char window[8] = {};
        std::memcpy(window, data + i, std::min<std::size_t>(8, size - i));
        match_window(load_be64(window), 8 * i, limit, out);
    }
}

// A block's bits: from its magic to the next magic (or the data's end, when cut short).
struct Span {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    bool truncated = false;
};

using Bytes = std::vector<char>;

// Sets `count` bits of `value` (most significant first) at bit `pos` of a zeroed buffer.
void put_bits(std::vector<unsigned char>& buf, std::uint64_t pos, std::uint64_t value, int count) {
    for (int i = count - 1; i >= 0; --i, ++pos)
        if ((value >> i) & 1) buf[pos / 8] |= 0x80 >> (pos % 8);
}

// The block alone as a complete stream libbz2 decodes: "BZh9" (the largest block size, so any
// block fits), the block's bits moved to a byte boundary, the end magic and the combined CRC,
// which for one block is the block's own CRC.
std::vector<unsigned char> one_block_stream(const unsigned char* data, std::size_t size, const Span& span) {
    const std::uint64_t bits = span.end - span.begin;
    const std::size_t body = (bits + 7) / 8;
    const std::uint64_t total_bits = 32 + bits + kMagicBits + 32;
    std::vector<unsigned char> stream((total_bits + 7) / 8, 0);
    std::memcpy(stream.data(), "BZh9", 4);
    unsigned char* out = stream.data() + 4;
    const std::size_t first = span.begin / 8;
    const unsigned shift = span.begin % 8;
    if (shift == 0) {
        std::memcpy(out, data + first, body);
    } else {
        for (std::size_t k = 0; k < body; ++k) {
            const unsigned hi = data[first + k];
            const unsigned lo = first + k + 1 < size ? data[first + k + 1] : 0;
            out[k] = static_cast<unsigned char>(hi << shift | lo >> (8 - shift));
        }
    }
    if (bits % 8 != 0) out[body - 1] &= static_cast<unsigned char>(0xFF << (8 - bits % 8));
    const std::uint64_t crc = load_be64(out + 6) >> 32;  // the 32 bits after the magic
    put_bits(stream, 32 + bits, kEndMagic, kMagicBits);
    put_bits(stream, 32 + bits + kMagicBits, crc, 32);
    return stream;
}

std::string bzip2_cause(int rc, std::uint64_t produced) {
    switch (rc) {
        // libbz2 writes a block out in full before it compares the CRC: output, then the error,
        // is a CRC mismatch; an error before any output is damage the decoder itself met.
        case BZ_DATA_ERROR: return produced > 0 ? "data error (CRC mismatch)" : "data error";
        case BZ_DATA_ERROR_MAGIC: return "data error (bad magic)";
        case BZ_MEM_ERROR: return "out of memory";
        case BZ_UNEXPECTED_EOF: return "data error (the block's data ends early)";
        default: return "libbz2 error " + std::to_string(rc);
    }
}

// A block's bytes, or why it cannot be decoded (then `data` is null).
struct Decoded {
    std::shared_ptr<const Bytes> data;
    std::string error;
};

Decoded decode_block(const unsigned char* data, std::size_t size, const Span& span) try {
    if (span.end - span.begin < kBlockHeaderBits + 8) return {nullptr, "data error (block too short)"};
    std::vector<unsigned char> in = one_block_stream(data, size, span);
    bz_stream z{};
    int rc = BZ2_bzDecompressInit(&z, 0, 0);
    if (rc != BZ_OK) return {nullptr, bzip2_cause(rc, 0)};
    // Most blocks decode to about 900 KB; runs of a byte make them up to ~45 MB.
    auto out = std::make_shared<Bytes>(std::size_t{1} << 20);
    std::size_t produced = 0;
    z.next_in = reinterpret_cast<char*>(in.data());
    z.avail_in = static_cast<unsigned>(in.size());
    for (;;) {
        if (produced == out->size()) out->resize(out->size() * 2);
        const unsigned room = static_cast<unsigned>(std::min<std::size_t>(out->size() - produced, 1u << 30));
        z.next_out = out->data() + produced;
        z.avail_out = room;
        const unsigned avail_in = z.avail_in;
        rc = BZ2_bzDecompress(&z);
        produced += room - z.avail_out;
        if (rc != BZ_OK) break;
        if (z.avail_out == room && z.avail_in == avail_in) {  // no progress: wants more input
            rc = BZ_UNEXPECTED_EOF;
            break;
        }
    }
    BZ2_bzDecompressEnd(&z);
    if (rc != BZ_STREAM_END) return {nullptr, bzip2_cause(rc, produced)};
    out->resize(produced);
    if (out->capacity() > produced + produced / 4) out->shrink_to_fit();
    return {std::move(out), ""};
} catch (const std::exception& e) {
    return {nullptr, e.what()};
}

// The file, mapped read-only; unmapped when it goes.
struct Mapping {
    const unsigned char* data = nullptr;
    std::size_t size = 0;
    Mapping() = default;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() {
        if (data != nullptr) ::munmap(const_cast<unsigned char*>(data), size);
    }
};

}  // namespace

bool is_bzip2(const unsigned char* head, std::size_t size) {
    if (size < 10 || std::memcmp(head, "BZh", 3) != 0 || head[3] < '1' || head[3] > '9') return false;
    std::uint64_t magic = 0;
    for (int i = 4; i < 10; ++i) magic = magic << 8 | head[i];
    return magic == kBlockMagic || magic == kEndMagic;
}

std::vector<Bzip2Magic> find_bzip2_magics(const unsigned char* data, std::size_t size) {
    std::vector<Bzip2Magic> magics;
    scan_range(data, size, 0, size, magics);
    return magics;
}

class Bzip2Reader::Impl {
public:
    Impl(const std::string& path, const Options& options);
    ~Impl();

    std::size_t read(std::uint64_t offset, char* buf, std::size_t len);
    std::uint64_t size();
    const std::string& name() const { return name_; }
    std::size_t block_count() const { return blocks_.size(); }

private:
    // What decoding a block taught: its size, or why it failed.
    struct Outcome {
        std::uint64_t end = 0;  // the span decoded (a merge changes a block's end)
        std::uint64_t size = 0;
        std::string error;
    };
    struct Cached {
        std::uint64_t end = 0;
        std::shared_ptr<const Bytes> data;
        std::list<std::uint64_t>::iterator lru;
    };

    void index(unsigned threads, bool false_magics);
    void stop();
    std::uint64_t known_end() const { return ends_.empty() ? 0 : ends_.back(); }
    bool reach(std::uint64_t pos);
    void learn_next();
    Outcome merge(std::size_t k, const Outcome& failed);
    std::shared_ptr<const Bytes> block_data(std::size_t k);
    void schedule(std::size_t from, std::size_t count, bool for_data);
    Error block_error(std::size_t k, const std::string& cause) const;
    Error truncated_error(std::size_t k) const;
    void worker();

    // Under mutex_.
    Outcome wait_outcome(std::unique_lock<std::mutex>& lock, const Span& span);
    std::shared_ptr<const Bytes> cached(const Span& span);
    void remember(const Span& span, std::shared_ptr<const Bytes> data);
    void enqueue(const Span& span, bool urgent);

    std::string name_;
    Mapping map_;
    std::size_t cache_limit_;
    std::size_t window_;      // blocks decoded at once
    std::size_t read_ahead_;  // blocks decoded ahead of sequential reads

    // The reader thread's alone.
    std::vector<Span> blocks_;
    std::vector<std::uint64_t> magic_bits_;  // every magic, sorted: where a merged block ends
    std::vector<std::uint64_t> ends_;        // uncompressed end of block k, for the first blocks
    std::string tail_error_;                 // the data is whole but the stream's end is cut
    std::size_t last_block_ = SIZE_MAX;      // the block the last read ended in

    // Shared with the workers.
    std::mutex mutex_;
    std::condition_variable work_ready_;
    std::condition_variable job_done_;
    std::deque<Span> queue_;
    std::unordered_set<std::uint64_t> pending_;  // block begins queued or being decoded
    std::unordered_map<std::uint64_t, Outcome> outcomes_;
    std::unordered_map<std::uint64_t, Cached> cache_;
    std::list<std::uint64_t> lru_;  // most recent first
    std::size_t cached_bytes_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> workers_;
};

Bzip2Reader::Impl::Impl(const std::string& path, const Options& options)
    : name_(path), cache_limit_(options.cache_bytes) {
    {
        const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) throw Error(path + ": cannot open: " + errno_text(errno));
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) throw Error(path + ": cannot open: " + errno_text(errno));
        if (st.st_size > 0) {
            void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
            if (p == MAP_FAILED) throw Error(path + ": cannot map: " + errno_text(errno));
            map_.data = static_cast<const unsigned char*>(p);
            map_.size = static_cast<std::size_t>(st.st_size);
        }
    }  // the mapping outlives the descriptor
    if (!is_bzip2(map_.data, map_.size)) throw Error(path + ": not a bzip2 file");

    unsigned threads = options.threads != 0 ? options.threads : std::thread::hardware_concurrency();
    threads = std::max(threads, 1u);
    window_ = 2 * std::size_t{threads};
    // Read-ahead the cache cannot keep (most blocks decode to 1 MB, some to 45) would evict the
    // block being read.
    read_ahead_ = std::min(window_, cache_limit_ / (std::size_t{4} << 20));
    index(threads, options.test_false_magics);

    try {
        for (unsigned t = 0; t < threads; ++t) workers_.emplace_back([this] { worker(); });
    } catch (...) {
        stop();
        throw;
    }
}

Bzip2Reader::Impl::~Impl() {
    stop();
}

// Drops queued work and joins the workers once their current block is done.
void Bzip2Reader::Impl::stop() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        queue_.clear();
    }
    work_ready_.notify_all();
    for (std::thread& t : workers_)
        if (t.joinable()) t.join();
    workers_.clear();
}

// The scan runs on `threads` threads over parts of the file; a magic is found by the part it
// starts in, whatever part it ends in.
void Bzip2Reader::Impl::index(unsigned threads, bool false_magics) {
    ::madvise(const_cast<unsigned char*>(map_.data), map_.size, MADV_SEQUENTIAL);
    const std::size_t part = std::max<std::size_t>(map_.size / threads + 1, std::size_t{1} << 20);
    std::vector<std::vector<Bzip2Magic>> found((map_.size + part - 1) / part);
    std::vector<std::thread> scanners;
    for (std::size_t p = 1; p < found.size(); ++p)
        scanners.emplace_back(
            [&, p] { scan_range(map_.data, map_.size, p * part, std::min(map_.size, (p + 1) * part), found[p]); });
    scan_range(map_.data, map_.size, 0, std::min(map_.size, part), found[0]);
    for (std::thread& t : scanners) t.join();
    ::madvise(const_cast<unsigned char*>(map_.data), map_.size, MADV_NORMAL);

    std::vector<Bzip2Magic> magics;
    for (const auto& f : found) magics.insert(magics.end(), f.begin(), f.end());

    const std::uint64_t data_bits = std::uint64_t{8} * map_.size;
    const auto build = [&] {
        blocks_.clear();
        magic_bits_.clear();
        for (std::size_t i = 0; i < magics.size(); ++i) {
            magic_bits_.push_back(magics[i].bit);
            if (magics[i].end) continue;
            const bool last = i + 1 == magics.size();
            blocks_.push_back({magics[i].bit, last ? data_bits : magics[i + 1].bit, last});
        }
    };
    build();
    if (false_magics) {
        for (std::size_t k = 0; k < blocks_.size(); ++k) {
            const Span& s = blocks_[k];
            if (s.truncated) continue;
            magics.push_back({s.begin + kBlockHeaderBits + (s.end - s.begin - kBlockHeaderBits) / 2, k % 2 == 1});
        }
        std::sort(magics.begin(), magics.end(), [](const Bzip2Magic& a, const Bzip2Magic& b) { return a.bit < b.bit; });
        build();
    }
    if (magics.empty() || !magics.back().end) return;  // no end, or a block cut short
    // All blocks are whole; the end-of-stream marker, or the next stream's header, may not be.
    const std::uint64_t end_bit = magics.back().bit;
    if (end_bit + kBlockHeaderBits > data_bits) {
        tail_error_ = name_ +
                      ": truncated: the bzip2 data ends inside an end-of-stream marker "
                      "(compressed byte " +
                      std::to_string(end_bit / 8) + ")";
        return;
    }
    const std::size_t next = (end_bit + kBlockHeaderBits + 7) / 8;
    const std::size_t rest = map_.size - next;
    const bool header_start = rest > 0 && rest < 10 &&
                              std::memcmp(map_.data + next, "BZh", std::min<std::size_t>(rest, 3)) == 0 &&
                              (rest < 4 || (map_.data[next + 3] >= '1' && map_.data[next + 3] <= '9'));
    if (header_start)
        tail_error_ = name_ +
                      ": truncated: the bzip2 data ends inside the header of a stream "
                      "(compressed byte " +
                      std::to_string(next) + ")";
}

Error Bzip2Reader::Impl::block_error(std::size_t k, const std::string& cause) const {
    return Error(name_ + ": bzip2 block " + std::to_string(k + 1) + " at compressed byte " +
                 std::to_string(blocks_[k].begin / 8) + ": " + cause);
}

Error Bzip2Reader::Impl::truncated_error(std::size_t k) const {
    return Error(name_ + ": truncated: the bzip2 data ends inside block " + std::to_string(k + 1) +
                 " (compressed byte " + std::to_string(blocks_[k].begin / 8) + ")");
}

void Bzip2Reader::Impl::worker() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        const Span span = queue_.front();
        queue_.pop_front();
        lock.unlock();
        Decoded decoded = decode_block(map_.data, map_.size, span);
        lock.lock();
        pending_.erase(span.begin);
        if (decoded.error.empty())
            remember(span, std::move(decoded.data));
        else
            outcomes_[span.begin] = {span.end, 0, std::move(decoded.error)};
        job_done_.notify_all();
    }
}

void Bzip2Reader::Impl::enqueue(const Span& span, bool urgent) {
    if (urgent)
        queue_.push_front(span);
    else
        queue_.push_back(span);
    pending_.insert(span.begin);
    work_ready_.notify_one();
}

std::shared_ptr<const Bytes> Bzip2Reader::Impl::cached(const Span& span) {
    const auto it = cache_.find(span.begin);
    if (it == cache_.end() || it->second.end != span.end) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second.data;
}

void Bzip2Reader::Impl::remember(const Span& span, std::shared_ptr<const Bytes> data) {
    outcomes_[span.begin] = {span.end, data->size(), ""};
    const auto old = cache_.find(span.begin);
    if (old != cache_.end()) {
        cached_bytes_ -= old->second.data->size();
        lru_.erase(old->second.lru);
        cache_.erase(old);
    }
    cached_bytes_ += data->size();
    lru_.push_front(span.begin);
    cache_[span.begin] = {span.end, std::move(data), lru_.begin()};
    while (cached_bytes_ > cache_limit_ && lru_.size() > 1) {
        const auto victim = cache_.find(lru_.back());
        cached_bytes_ -= victim->second.data->size();
        cache_.erase(victim);
        lru_.pop_back();
    }
}

Bzip2Reader::Impl::Outcome Bzip2Reader::Impl::wait_outcome(std::unique_lock<std::mutex>& lock, const Span& span) {
    for (;;) {
        const auto it = outcomes_.find(span.begin);
        if (it != outcomes_.end() && it->second.end == span.end) return it->second;
        if (pending_.count(span.begin) == 0) enqueue(span, /*urgent=*/true);
        job_done_.wait(lock);
    }
}

// Queues up to `count` blocks from `from` on, with at most window_ in flight: for their data
// (read-ahead) or only to learn their sizes.
void Bzip2Reader::Impl::schedule(std::size_t from, std::size_t count, bool for_data) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t to = std::min(blocks_.size(), from + count);
    for (std::size_t k = from; k < to && pending_.size() < window_; ++k) {
        const Span& span = blocks_[k];
        if (span.truncated) break;
        if (pending_.count(span.begin) != 0) continue;
        const auto known = outcomes_.find(span.begin);
        const bool decoded = known != outcomes_.end() && known->second.end == span.end;
        if (decoded && (!for_data || !known->second.error.empty())) continue;
        if (for_data && cache_.count(span.begin) != 0 && cache_.at(span.begin).end == span.end) continue;
        enqueue(span, /*urgent=*/false);
    }
}

// Decodes (on the pool, a window at a time) the first block whose size is not known yet.
void Bzip2Reader::Impl::learn_next() {
    const std::size_t k = ends_.size();
    if (blocks_[k].truncated) throw truncated_error(k);
    schedule(k, window_, /*for_data=*/false);
    Outcome outcome;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        outcome = wait_outcome(lock, blocks_[k]);
    }
    if (!outcome.error.empty()) outcome = merge(k, outcome);
    ends_.push_back(known_end() + outcome.size);
}

// Block k failed: the magic that ended it may be a false one inside its compressed data. If
// the block decodes when it runs to the next magic, that magic (and the block it seemed to
// start) goes from the index; if not, block k is damaged.
Bzip2Reader::Impl::Outcome Bzip2Reader::Impl::merge(std::size_t k, const Outcome& failed) {
    const Span span = blocks_[k];
    const auto next = std::upper_bound(magic_bits_.begin(), magic_bits_.end(), span.end);
    if (span.truncated || next == magic_bits_.end()) throw block_error(k, failed.error);
    const Span merged{span.begin, *next, false};
    Decoded decoded = decode_block(map_.data, map_.size, merged);
    if (!decoded.error.empty()) throw block_error(k, failed.error);
    magic_bits_.erase(std::lower_bound(magic_bits_.begin(), magic_bits_.end(), span.end));
    if (k + 1 < blocks_.size() && blocks_[k + 1].begin == span.end)
        blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(k + 1));
    blocks_[k] = merged;
    const std::lock_guard<std::mutex> lock(mutex_);
    remember(merged, std::move(decoded.data));
    return outcomes_.at(merged.begin);
}

// Learns block sizes until one covers `pos`; false when `pos` is at or past the end.
bool Bzip2Reader::Impl::reach(std::uint64_t pos) {
    while (known_end() <= pos && ends_.size() < blocks_.size()) learn_next();
    if (known_end() > pos) return true;
    if (!tail_error_.empty()) throw Error(tail_error_);
    return false;
}

// Block k's bytes: from the cache, from a worker decoding it now, or decoded here.
std::shared_ptr<const Bytes> Bzip2Reader::Impl::block_data(std::size_t k) {
    const Span span = blocks_[k];
    {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            if (auto data = cached(span)) return data;
            if (pending_.count(span.begin) == 0) break;
            job_done_.wait(lock);
        }
    }
    Decoded decoded = decode_block(map_.data, map_.size, span);
    if (!decoded.error.empty()) throw block_error(k, decoded.error);
    const std::lock_guard<std::mutex> lock(mutex_);
    remember(span, decoded.data);
    return decoded.data;
}

std::size_t Bzip2Reader::Impl::read(std::uint64_t offset, char* buf, std::size_t len) {
    len = static_cast<std::size_t>(std::min<std::uint64_t>(len, UINT64_MAX - offset));
    std::size_t done = 0;
    while (done < len) {
        const std::uint64_t pos = offset + done;
        if (!reach(pos)) break;
        const std::size_t k =
            static_cast<std::size_t>(std::upper_bound(ends_.begin(), ends_.end(), pos) - ends_.begin());
        const std::uint64_t start = k == 0 ? 0 : ends_[k - 1];
        const std::shared_ptr<const Bytes> data = block_data(k);
        if (data->size() != ends_[k] - start)
            throw block_error(k, "decodes to " + std::to_string(data->size()) + " bytes, not " +
                                     std::to_string(ends_[k] - start) + " as before");
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(len - done, ends_[k] - pos));
        std::memcpy(buf + done, data->data() + (pos - start), n);
        done += n;
        // Sequential reads (the common case) get the next blocks decoded ahead; a read that
        // jumped elsewhere does not, so random reads cost no wasted decoding.
        if (read_ahead_ > 0 && last_block_ != SIZE_MAX && (k == last_block_ || k == last_block_ + 1))
            schedule(k + 1, read_ahead_, /*for_data=*/true);
        last_block_ = k;
    }
    return done;
}

std::uint64_t Bzip2Reader::Impl::size() {
    while (ends_.size() < blocks_.size()) learn_next();
    if (!tail_error_.empty()) throw Error(tail_error_);
    return known_end();
}

Bzip2Reader::Bzip2Reader(const std::string& path) : Bzip2Reader(path, Options()) {}

Bzip2Reader::Bzip2Reader(const std::string& path, const Options& options)
    : impl_(std::make_unique<Impl>(path, options)) {}

Bzip2Reader::~Bzip2Reader() = default;

std::size_t Bzip2Reader::read(std::uint64_t offset, void* buf, std::size_t len) {
    return impl_->read(offset, static_cast<char*>(buf), len);
}

std::uint64_t Bzip2Reader::size() {
    return impl_->size();
}

const std::string& Bzip2Reader::name() const {
    return impl_->name();
}

std::size_t Bzip2Reader::block_count() const {
    return impl_->block_count();
}

}  // namespace kbuild
