package assign

// workerQueue is java.util.PriorityQueue as VarianceBasedLeaseAssignmentDecider
// uses it: a binary heap whose head is the worker with the most room to
// reach the fleet average (comparator reversed). The sift steps are
// Java's, so workers with equal room come out in the order Java's queue
// gives them for the same insertion order. Keys are computed at each
// comparison, as Java's comparator does; only workers outside the queue are
// changed.
type workerQueue struct {
	items []*worker
	fleet map[string]float64
}

// cmp orders a before b (negative) when a has more room.
func (q *workerQueue) cmp(a, b *worker) int {
	return javaCompare(b.percentageToReachAverage(q.fleet), a.percentageToReachAverage(q.fleet))
}

// offer is PriorityQueue.offer (siftUp).
func (q *workerQueue) offer(w *worker) {
	k := len(q.items)
	q.items = append(q.items, w)
	for k > 0 {
		parent := (k - 1) >> 1
		e := q.items[parent]
		if q.cmp(w, e) >= 0 {
			break
		}
		q.items[k] = e
		k = parent
	}
	q.items[k] = w
}

// poll is PriorityQueue.poll (siftDown of the last element); nil when empty.
func (q *workerQueue) poll() *worker {
	if len(q.items) == 0 {
		return nil
	}
	head := q.items[0]
	n := len(q.items) - 1
	x := q.items[n]
	q.items = q.items[:n]
	if n > 0 {
		k, half := 0, n>>1
		for k < half {
			child := 2*k + 1
			c := q.items[child]
			if right := child + 1; right < n && q.cmp(c, q.items[right]) > 0 {
				child = right
				c = q.items[child]
			}
			if q.cmp(x, c) <= 0 {
				break
			}
			q.items[k] = c
			k = child
		}
		q.items[k] = x
	}
	return head
}
