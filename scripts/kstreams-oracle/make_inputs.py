#!/usr/bin/env python3
"""Writes the checked-in inputs of the DSL golden cases, engine/tests/golden/dsl/inputs/<case>.json.

The records of each case are designed here, next to the "notes" that say what they exercise; the JSON
files are its output and are what the oracle (regenerate.sh) and the Rust tests read. Edit this file,
run it, then regenerate.sh, and check that the notes still describe the new goldens.
Input format: {"case", "notes", "inputs": [{"topic", "key", "value", "timestamp"}]}; null key/value = JSON null.
"""
import json, os
D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "engine", "tests", "golden", "dsl", "inputs")
def rec(topic, key, value, ts): return {"topic": topic, "key": key, "value": value, "timestamp": ts}
def write(case, notes, recs):
    os.makedirs(D, exist_ok=True)
    with open(os.path.join(D, case + ".json"), "w") as f:
        f.write("{\n  \"case\": %s,\n  \"notes\": %s,\n  \"inputs\": [\n" % (json.dumps(case), json.dumps(notes)))
        f.write(",\n".join("    " + json.dumps(r) for r in recs))
        f.write("\n  ]\n}\n")
def ins(rows, topic="in"): return [rec(topic, k, v, t) for (k, v, t) in rows]

# ---- tumbling 10 s, grace 5 s: window [s, s+10000) closes when stream time >= s+15000
tumbling = ins([
 ("a","1",1000), ("a","1",9999), ("b","1",0), ("a","1",10000), ("b","1",12000),
 ("a","1",3000), ("c","1",14999), ("a","1",5000), ("c","1",15000), ("a","1",8000),
 ("b","1",9999), (None,"1",16000), ("b","1",16000), ("a","1",19999), ("c","1",20000),
 ("b","1",19000), ("d","1",25000), ("b","1",15000), ("a","1",21000), ("c","1",36000),
])
tnotes = ("Keys a-d over windows [0,10000), [10000,20000), [20000,30000): records exactly at a window "
 "start (b@0, a@10000, c@20000) and at end-1 (a@9999); out-of-order within grace (a@3000 and a@5000 "
 "after stream time 12000/14999; b@19000 at stream time 20000); c@15000 closes [0,10000) exactly "
 "(stream time - grace = end), so a@8000 and b@9999 are late and dropped; d@25000 closes [10000,20000) "
 "exactly, so b@15000 is dropped; a null key is dropped; c@36000 advances stream time past every earlier window.")
write("tumbling_count", tnotes, tumbling)
write("tumbling_count_cached", tnotes + " Same records as tumbling_count, with the 10 MB cache "
 "(TopologyTestDriver commits after each input record).", tumbling)
write("tumbling_suppress", tnotes + " With suppress(untilWindowCloses) each window is emitted once, "
 "when stream time reaches its end + grace; [20000,30000) closes at stream time 35000 (c@36000).", tumbling)

write("tumbling_reduce", "Sum of decimal values per key per 10 s window, grace 5 s: boundaries at start "
 "(b@0, a@10000) and end-1 (a@9999), negative and zero values, out-of-order within grace (a@4000 at "
 "stream time 13000), late past grace (a@2000 after stream time 15000, dropped), c@31000 flushes.", ins([
 ("a","5",1000), ("a","7",9999), ("b","-3",0), ("a","10",10000), ("b","0",5000), ("b","4",13000),
 ("a","2",4000), ("c","100",15000), ("a","50",2000), ("b","1",16500), ("a","-10",19999), ("c","1",20000),
 ("b","8",14000), ("c","5",31000),
]))
write("tumbling_aggregate", "String concatenation per key per 10 s window (grace 5 s) shows processing "
 "order: x5@5000 arrives after x4@12000 and is appended last in [0,10000) (arrival order, not "
 "timestamp order), boundary records "
 "a@9999/a@10000 land in different windows, late b@1000 (after stream time 15000) is dropped.", ins([
 ("a","x1",0), ("b","y1",2000), ("a","x2",9999), ("a","x3",10000), ("a","x4",12000), ("a","x5",5000),
 ("b","y2",11000), ("c","z1",15000), ("b","y3",1000), ("a","x6",19000), ("b","y4",14000), ("c","z2",30000),
]))

write("hopping_count", "Hopping 10 s windows advancing by 5 s, grace 2 s: each record lands in two "
 "windows aligned to multiples of 5 s; a@0 and a@5000 exactly at window starts, a@4999 in [0,10000) "
 "only (and the never-created [-5000,5000)); a window closes when stream time reaches end + 2 s; b@8000 at stream time 12000 is late for [0,10000) (closed at 12000) but counted in "
 "[5000,15000); a@3000 then is late for its only window and dropped; a@14000 at stream time 22000 is "
 "dropped from both windows.", ins([
 ("a","1",0), ("a","1",4999), ("a","1",5000), ("b","1",7000), ("a","1",10000), ("b","1",11999),
 ("a","1",9000), ("a","1",12000), ("b","1",8000), ("a","1",3000), ("b","1",17000), ("a","1",16999),
 ("c","1",22000), ("a","1",14000), ("a","1",21000), ("c","1",40000),
]))

sliding = [("a",1000), ("a",3000), ("a",6000), ("b",2000), ("a",6000), ("a",4500), ("b",8000),
 ("a",12000), ("a",9000), ("a",3000), ("b",7000), ("b",20000), ("a",14000), ("a",19000), ("c",40000)]
snotes = ("Sliding windows of 5 s time difference (inclusive bounds), grace 2 s: records before 5000 use "
 "windows clamped at 0; a@1000 and a@6000 exactly 5 s apart share [1000,6000]; two records at the same "
 "timestamp (a@6000); out-of-order within grace (a@4500 at stream time 6000; a@9000 at stream time 12000 "
 "creates and updates only windows still open); at stream time 12000 a@3000 is wholly late and dropped, "
 "b@7000's own window is closed but its right window [7001,12001] is created; at stream time 20000 "
 "a@14000's windows are closed so it is not counted (a@19000's window [14000,19000] holds only itself).")
write("sliding_count", snotes, ins([(k, "1", t) for (k, t) in sliding]))
write("sliding_count_cached", snotes + " Same records as sliding_count with the 10 MB cache: the windows a "
 "record creates or updates are forwarded once per commit (the driver commits after each record), each "
 "with its latest count.", ins([(k, "1", t) for (k, t) in sliding]))
vals = ["1","2","3","10","4","5","20","6","7","100","30","40","8","9","0"]
write("sliding_reduce", snotes + " Values are summed.", ins([(k, v, t) for ((k, t), v) in zip(sliding, vals)]))

session = [("b",2000), ("a",1000), ("a",5000), ("b",7001), ("a",11000), ("a",10000), ("a",13000),
 ("a",12000), ("b",20000), ("b",12000), ("a",19000), ("c",25000), ("c",30000), ("c",24000), ("c",22000),
 ("d",23000), ("d",22999), ("a",40000)]
sesnotes = ("Session windows, inactivity gap 5 s, grace 2 s (a session is late when its end < stream time "
 "- gap - grace). a@1000 (out of order, within grace) starts a session; a@5000 merges into it (the old "
 "session [1000,1000] gets a tombstone); b@7001 is 5001 ms after b@2000: a second session; a@10000 is "
 "exactly 5 s after a@5000 and bridges [1000,5000] and [11000,11000] into [1000,11000] (two tombstones); "
 "a@13000 extends it; a@12000 falls inside [1000,13000]: the session is removed and re-put under the same "
 "window (tombstone then value); at stream time 20000 (close time 13000) b@12000 is late: its session "
 "would end at 12000 < 13000 ([7001,7001] is past retention too), dropped; a@19000 (out of order) opens a new session; c@24000 and c@22000 arrive "
 "out of order and extend [25000,30000] backwards; at stream time 30000 (close 23000) d@23000 ends "
 "exactly at the close time and is kept; d@22999 would merge with it, but the session store's fetch "
 "hides sessions ending before stream time - retention + 1 (retention = gap + grace = 7 s, so before "
 "23001): d@22999 stays alone, ends before the close time and is dropped; a@40000 advances stream time "
 "past every earlier session.")
write("session_count", sesnotes, ins([(k, "1", t) for (k, t) in session]))
write("session_count_cached", sesnotes + " Same records as session_count with the 10 MB cache: the "
 "tombstone and re-put of one session key made while processing a@12000 collapse into the final value; "
 "a tombstone of a session flushed at an earlier commit is still emitted. The cache also still holds "
 "d's session [23000,23000] (the retention filter applies to the store below it only), so d@22999 "
 "merges into [22999,23000], which ends at the close time and is kept: a Kafka Streams difference "
 "between cached and uncached session stores.", ins([(k, "1", t) for (k, t) in session]))
write("session_suppress", sesnotes + " With suppress(untilWindowCloses) only final sessions are emitted, "
 "once stream time passes their end + gap + grace, without tombstones.", ins([(k, "1", t) for (k, t) in session]))
write("session_reduce", sesnotes + " Values are concatenated: merges show the merge order.",
 ins([(k, "%s%d" % (k, i), t) for i, (k, t) in enumerate(session)]))

write("windowed_key_bytes", "Tumbling (10 s, grace 5 s) and session (gap 5 s, grace 2 s) counts written "
 "with Kafka Streams' windowed serdes: out keys are key bytes + 8-byte big-endian window start, "
 "out_session keys are key bytes + 8-byte end + 8-byte start; keys include an empty string and a "
 "multi-byte UTF-8 key; session merges (a@4000; é@6500 with é@9000, not with é@2000 whose session "
 "is past retention at stream time 12000) emit tombstones with the old sessions' key bytes; "
 "timestamps above 2^32 ms so that the upper bytes of the 8-byte fields are non-zero.", ins([
 ("a","1",1000), ("é","1",2000), ("","1",3000), ("a","1",4000), ("a","1",12000), ("é","1",9000),
 ("é","1",6500), ("","1",15000),
 ("b","1",4294967296000), ("b","1",4294967299000), ("a","1",4294967310000),
]))

# ---- stream-stream joins: 5 s difference, grace 2 s
join = [
 ("left","a","L1",1000), ("right","a","R1",3000), ("right","b","R2",4000), ("left","a","L2",8000),
 ("left","c","L3",9000), ("right","c","R3",12000), ("right","a","R4",14000), ("left","d","L4",16000),
 ("left","a","L5",19000), ("right","d","R5",15000), ("left","e","L6",5000), ("right","a","R6",10000),
 ("right","a","R7",21000), ("left","f","L7",20000), ("right","g","R8",22000), ("left","z","Lz",40000),
 ("right","z","Rz",40000), ("left","y","Ly",130000), ("right","y","Ry",130000), ("right","a","Rold",8000),
]
jnotes = ("JoinWindows 5 s, grace 2 s. a: L1-R1 match (2 s apart), L2 matches R1 exactly 5 s before; R4@14000 "
 "is 6 s after L2: no match; L5@19000 matches R4 and later R7; b: R2 never matches; c: L3 matched by a "
 "later R3 3 s after it; d: R5@15000 arrives out of order and matches L4; at stream time 19000, L6@5000 "
 "(key e, no match) arrives after its window closed and R6@10000 arrives out of order by 9 s: Kafka "
 "Streams' join drops nothing for grace, R6 still joins L2 (the window stores keep records for 5+5+2 s "
 "in 60 s segments); f: L7 and g: R8 never match; z@40000 on both sides closes every earlier window so "
 "left/outer non-joined results are emitted; y@130000 moves stream time far on, so Rold@8000 finds L2 "
 "gone from the left window store (retention passed) and joins nothing.")
write("stream_join_inner", jnotes, [rec(*r) for r in join])
write("stream_join_left", jnotes + " Left join: unmatched left records are emitted as \"L+null\" once "
 "their window closes (not at arrival); a left record arriving after its window closed (L6) is emitted at once.", [rec(*r) for r in join])
write("stream_join_outer", jnotes + " Outer join: unmatched records of either side are emitted once their "
 "window closes, as \"L+null\" or \"null+R\"; a record arriving after its window closed (L6, Rold) is emitted at once.", [rec(*r) for r in join])
write("stream_join_before_after", "JoinWindows 5 s after, before(1 s), grace 2 s: a left record at t joins "
 "right records in [t-1000, t+5000]. a: L@10000 joins R@9000 (exactly 1 s before), R@15000 (exactly 5 s "
 "after) and R@11000, not R@8999 or R@15001. b: R@10000 joins L@9500 (R 0.5 s after) and L@11000 (R 1 s "
 "before), not L@14000 (R 4 s before) nor L@4000 (R 6 s after, out of order). Rlate@1000 arrives 14 s "
 "out of order and matches nothing (La is 9 s after it).", [rec(*r) for r in [
 ("left","a","La",10000), ("right","a","R9000",9000), ("right","a","R8999",8999), ("right","a","R15000",15000),
 ("right","a","R15001",15001), ("right","a","R11000",11000), ("right","b","Rb",10000), ("left","b","Lb14000",14000),
 ("left","b","Lb9500",9500), ("left","b","Lb11000",11000), ("left","b","Lb4000",4000), ("right","a","Rlate",1000),
 ("left","z","Lz",30000), ("right","z","Rz",30000),
]])

# ---- tables
filt = ins([("a","2",1000), ("b","3",2000), ("a","5",3000), ("c","4",4000), ("b","6",5000), ("a",None,6000),
 ("c","8",7000), ("d","7",8000), ("b",None,9000), ("e",None,10000), ("a","10",11000), ("c","9",5500),
 ("d","7",12000), ("f","0",13000)])
fnotes = ("Table updates: a passes then fails (2 → 5), b fails then passes (3 → 6), a deleted then re-added, "
 "d never passes (7, re-put with the same value), e deleted without ever existing, c@5500 is an "
 "out-of-order update (timestamp before its previous one) that still replaces the value, f is 0 (even).")
write("table_filter", fnotes + " filter keeps even values.", filt)
write("table_filter_not", fnotes + " filterNot keeps odd values.", filt)
write("table_map_values", "Table updates through mapValues(toUpperCase): new keys, overwrites, a tombstone "
 "(null passes through unmapped), delete of a never-seen key, re-add after delete, an out-of-order "
 "timestamp, an empty-string value and a non-ASCII value (toUpperCase of É stays É).", ins([
 ("a","apple",1000), ("b","banana",2000), ("a","avocado",3000), ("b",None,4000), ("c",None,5000),
 ("b","blueberry",6000), ("d","",7000), ("a","apricot",2500), ("d","date",8000), ("e","Élan",9000),
 ("d",None,10000)]))
write("table_group_count", "groupBy((k, v) -> (v, v)).count(): u1 moves red → blue (subtract from red, add "
 "to blue), u2 is deleted (subtract only), u3 is re-put with the same value (same group key: one update), "
 "u4 is added and deleted (green goes 1 → 0), u5 is deleted without existing (nothing to subtract), u1 "
 "moves back to red.", ins([
 ("u1","red",1000), ("u2","blue",2000), ("u3","red",3000), ("u1","blue",4000), ("u2",None,5000),
 ("u3","red",6000), ("u4","green",7000), ("u4",None,8000), ("u5",None,9000), ("u1","red",10000)]))
grp = ins([("k1","x:5",1000), ("k2","x:3",2000), ("k3","y:10",3000), ("k1","x:7",4000), ("k2","y:4",5000),
 ("k3",None,6000), ("k4","z:1",7000), ("k4","z:1",8000), ("k1","y:0",9000), ("k5",None,10000),
 ("k2","x:-2",11000), ("k4",None,12000)])
gnotes = ("Values \"<group>:<n>\" grouped by group: k1 changes n within group x (5 → 7: subtractor and adder "
 "on the same group in one update), k2 moves x → y (subtract from x, add to y) and back to x with a "
 "negative n, k3 is deleted (subtract only), k4 is re-put with an identical value and then deleted (z "
 "back to 0), k1 moves to y with 0, k5 is deleted without existing.")
write("table_group_aggregate", gnotes + " aggregate(0, +n, -n).", grp)
write("table_group_aggregate_cached", gnotes + " aggregate(0, +n, -n) with the 10 MB cache: same records "
 "as table_group_aggregate (TopologyTestDriver commits after each input record, so the cache collapses "
 "only updates made while one input record is processed).", grp)
write("table_group_reduce", gnotes + " reduce(a + b, a - b): the first value of a group is taken as is.", grp)

tj = [("left","a","A1",1000), ("right","a","X1",2000), ("left","b","B1",3000), ("right","c","Z1",4000),
 ("left","a","A2",5000), ("right","a",None,6000), ("right","b","Y1",7000), ("left","b",None,8000),
 ("right","c",None,9000), ("right","d",None,10000), ("left","e","E1",2500), ("right","e","W1",11000),
 ("left","e","E2",500), ("left","a",None,12000)]
tjnotes = ("Two tables: a joins (A1+X1), the left value changes (A2), then the right side is deleted; b "
 "exists on the left only, then the right, then the left is deleted; c exists on the right only and is "
 "deleted; d is a delete of a never-seen key; e has an out-of-order left update (E2 at 500 after E1 at "
 "2500) after the right W1 at 11000: result timestamps are the max of both sides; a is finally deleted "
 "on the left.")
write("table_join_inner", tjnotes, [rec(*r) for r in tj])
write("table_join_left", tjnotes + " Left join: a missing right side renders \"null\".", [rec(*r) for r in tj])
write("table_join_outer", tjnotes + " Outer join: a missing side renders \"null\"; a key gone on both "
 "sides gives a tombstone.", [rec(*r) for r in tj])

write("fk_join", "Orders (left, \"<customerId>:<amount>\") joined to customers (right) by foreign key: o1 "
 "joins alice; o2 references c2 before c2 exists (no output until bob arrives); alice renamed to alicia "
 "updates o1 and o3; o1 moves to customer c2; o3 moves to c3 which does not exist yet (tombstone), then "
 "carol arrives; customer c2 deleted (o1 and o2 get tombstones); o2 deleted; o4 changes amount with the "
 "same customer; o5 is a delete of a never-seen order; customer c9 with no orders changes nothing.", [rec(*r) for r in [
 ("right","c1","alice",1000), ("left","o1","c1:10",2000), ("left","o2","c2:20",3000), ("right","c2","bob",4000),
 ("left","o3","c1:30",5000), ("right","c1","alicia",6000), ("left","o1","c2:15",7000), ("left","o3","c3:30",8000),
 ("right","c2",None,9000), ("right","c3","carol",10000), ("left","o2",None,11000), ("left","o4","c1:40",12000),
 ("left","o4","c1:41",13000), ("left","o5",None,14000), ("right","c9","dave",15000),
]])
