// A first-in first-out queue that holds no memory while empty.
//
// std::deque (libstdc++) allocates its map and a 512-byte block even when
// empty, so one per mailbox costs ~600 bytes for every mailbox the node
// knows. This one is a vector read from a moving head: nothing allocated
// when empty, one small block for a few items; the consumed front is
// dropped once it makes up half the vector.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace crmsync {

template <class T>
class small_fifo {
public:
  bool empty() const {
    return head_ == items_.size();
  }

  size_t size() const {
    return items_.size() - head_;
  }

  T& front() {
    return items_[head_];
  }

  const T& front() const {
    return items_[head_];
  }

  const T& back() const {
    return items_.back();
  }

  void push_back(T x) {
    items_.push_back(std::move(x));
  }

  void pop_front() {
    items_[head_] = T{};
    if (++head_ == items_.size()) {
      std::vector<T>{}.swap(items_);
      head_ = 0;
    } else if (head_ >= 16 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + head_);
      head_ = 0;
    }
  }

  /// Moves every item out, oldest first, and leaves the queue empty.
  std::vector<T> take_all() {
    std::vector<T> out;
    out.reserve(size());
    for (size_t i = head_; i < items_.size(); ++i)
      out.push_back(std::move(items_[i]));
    std::vector<T>{}.swap(items_);
    head_ = 0;
    return out;
  }

private:
  std::vector<T> items_;
  size_t head_ = 0;
};

} // namespace crmsync
