/**
 * A first-in first-out list of queued jobs, one per priority.
 *
 * Intrusive and doubly linked so that pushing at either end, popping and
 * removing a job from the middle (cancel, re-rank) all cost the same at any
 * backlog: nothing is shifted or spliced.
 *
 * @internal
 */
import type { CacheKey } from "../../Domain.js"

/** @internal */
export interface Linked {
  prev: Linked | undefined
  next: Linked | undefined
  readonly key: CacheKey
}

/** @internal */
export class JobList<J extends Linked> {
  head: J | undefined = undefined
  tail: J | undefined = undefined
  size = 0

  pushBack(job: J): void {
    job.next = undefined
    job.prev = this.tail
    if (this.tail === undefined) this.head = job
    else this.tail.next = job
    this.tail = job
    this.size++
  }

  pushFront(job: J): void {
    job.prev = undefined
    job.next = this.head
    if (this.head === undefined) this.tail = job
    else this.head.prev = job
    this.head = job
    this.size++
  }

  remove(job: J): void {
    if (job.prev === undefined) this.head = job.next as J | undefined
    else job.prev.next = job.next
    if (job.next === undefined) this.tail = job.prev as J | undefined
    else job.next.prev = job.prev
    job.prev = undefined
    job.next = undefined
    this.size--
  }

  keys(): Array<CacheKey> {
    const out: Array<CacheKey> = []
    for (let job: Linked | undefined = this.head; job !== undefined; job = job.next) out.push(job.key)
    return out
  }
}
