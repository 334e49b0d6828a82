"""`gamgin bench kb`: ingest throughput, query latency and retrieval quality (hit@3, MRR)
for dense, BM25 and hybrid search, on a synthetic zh/en document collection.

The collection is generated (seeded) so the answers are known: Chinese PDFs about family
documents (number, expiry date, where it is kept) and English notes about contacts (phone,
address, birthday), with look-alike facts of other people as distractors. A question counts
as hit at rank r when the r-th passage contains the answer value. Writes
results/bench-kb.json under $GAMGIN_HOME (or the workspace).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from gamgin_common.paths import results_path

ZH_OWNERS = ["我", "爸爸", "妈妈", "奶奶", "爷爷", "哥哥", "姐姐", "弟弟", "妹妹", "老婆", "老公",
             "儿子", "女儿", "外婆", "外公", "舅舅"]
ZH_ITEMS = ["护照", "驾照", "身份证", "社保卡", "医保卡", "签证", "居住证", "港澳通行证", "银行卡",
            "会员卡", "借书证", "学生证"]
ZH_PLACES = ["书房左边的抽屉", "卧室衣柜顶层的盒子", "客厅电视柜第二格", "保险箱", "床头柜",
             "办公室的文件夹", "玄关的钥匙盒", "厨房上面的柜子"]
ZH_FILLER = ["家里每周六上午大扫除，垃圾分类要按小区的规定放好。",
             "阳台上的花每三天浇一次水，夏天要在傍晚浇。",
             "冰箱里的剩菜最好两天内吃完，生熟要分开放。",
             "晚上十点以后请把音量调小，不要影响邻居休息。",
             "每个月初记得交水电费和物业费，可以在手机上交。"]
EN_NAMES = ["Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Irene",
            "Jack", "Karen", "Leo", "Mia", "Nathan", "Olivia", "Peter", "Quinn", "Rosa"]
EN_STREETS = ["Maple Street", "Oak Avenue", "River Road", "Hill Lane", "Park Drive",
              "Station Road", "Church Street", "Lake View"]
EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December"]
EN_FILLER = ["The recycling bin goes out on Tuesday nights and the garden waste on Fridays.",
             "Water the tomatoes every morning in summer, but never in the midday sun.",
             "The router sometimes needs a restart after a thunderstorm.",
             "Keep the spare light bulbs in the box under the stairs.",
             "The dishwasher works best with the eco program and a full load."]


def make_collection(root: Path, n_zh: int, n_en: int, seed: int = 1) -> list[dict]:
    """Write the documents; return the questions with their expected answer value."""
    from gamgin_knowledge.synthetic import write_pdf

    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    questions: list[dict] = []
    pairs = [(o, i) for o in ZH_OWNERS for i in ZH_ITEMS]
    rng.shuffle(pairs)
    for d in range(n_zh):
        pages = []
        for _page in range(2):
            paras = []
            for owner, item in (pairs.pop() for _ in range(2)):
                num = f"{rng.choice('EGDKH')}{rng.randint(10000000, 99999999)}"
                y, m, day = rng.randint(2026, 2036), rng.randint(1, 12), rng.randint(1, 28)
                date = f"{y}年{m}月{day}日"
                place = rng.choice(ZH_PLACES)
                paras.append(f"{owner}的{item}号码是{num}。{owner}的{item}有效期至{date}，"
                             f"到期前要提前三个月去办理。{owner}的{item}平时放在{place}里。")
                questions += [
                    {"lang": "zh", "a": date, "q": rng.choice([
                        f"{owner}的{item}什么时候过期？", f"{owner}的{item}哪天到期？"])},
                    {"lang": "zh", "a": num, "q": rng.choice([
                        f"{owner}的{item}号码是多少？", f"{owner}的{item}号是什么？"])},
                    {"lang": "zh", "a": place, "q": rng.choice([
                        f"{owner}的{item}放在哪里了？", f"{owner}的{item}在哪儿？"])}]
            paras.append(rng.choice(ZH_FILLER))
            rng.shuffle(paras)
            pages.append("\n\n".join(paras))
        write_pdf(root / f"证件{d:02d}.pdf", pages)
    names = list(EN_NAMES)
    for d in range(n_en):
        paras = []
        for _ in range(2):
            name = names[(d * 2 + _) % len(names)] + (f" {d}" if d * 2 + _ >= len(names) else "")
            phone = f"555-{rng.randint(1000, 9999)}"
            addr = f"{rng.randint(2, 99)} {rng.choice(EN_STREETS)}"
            bday = f"{rng.randint(1, 28)} {rng.choice(EN_MONTHS)}"
            paras.append(f"{name} can be reached on {phone}. {name} lives at {addr}, "
                         f"near the bakery. {name} was born on {bday}, so send a card a week "
                         f"before.")
            # half the questions are paraphrases that share few words with the text
            questions += [
                {"lang": "en", "a": phone, "q": rng.choice([
                    f"What is {name}'s phone number?", f"How do I call {name}?"])},
                {"lang": "en", "a": addr, "q": rng.choice([
                    f"Where does {name} live?", f"What is {name}'s home address?"])},
                {"lang": "en", "a": bday, "q": rng.choice([
                    f"When is {name}'s birthday?", f"What day was {name} born?"])}]
        paras.append(rng.choice(EN_FILLER))
        rng.shuffle(paras)
        suffix = ".md" if d % 2 else ".txt"
        body = "\n\n".join(paras)
        (root / f"contacts{d:02d}{suffix}").write_text(
            (f"# Contacts {d}\n\n" if suffix == ".md" else "") + body, encoding="utf-8")
    return questions


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gamgin bench kb", description=__doc__.split("\n")[0])
    ap.add_argument("--zh-docs", type=int, default=16, help="Chinese PDFs (2 pages, 4 facts)")
    ap.add_argument("--en-docs", type=int, default=16, help="English notes (2 contacts)")
    ap.add_argument("--questions", type=int, default=60, help="per language (sampled)")
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--embedding-model", default="")
    ap.add_argument("--sweep", action="store_true",
                    help="also try RRF dense weights for Chinese queries")
    ap.add_argument("--out", default="", help="JSON path (default results/bench-kb.json)")
    args = ap.parse_args(argv)
    out = results_path("bench-kb.json", args.out)  # fails now, not after the run

    import psutil

    from gamgin_knowledge.backends import make_embedder
    from gamgin_knowledge.core import RRF_K, KnowledgeBase
    from gamgin_knowledge.retriever import KnowledgeRetriever

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    with tempfile.TemporaryDirectory(prefix="gamgin-bench-kb-") as tmp:
        docs = Path(tmp) / "docs"
        questions = make_collection(docs, args.zh_docs, args.en_docs)
        rng = random.Random(2)
        sample = []
        for lang in ("zh", "en"):
            qs = [q for q in questions if q["lang"] == lang]
            sample += rng.sample(qs, min(args.questions, len(qs)))
        nbytes = sum(p.stat().st_size for p in docs.iterdir())
        t0 = time.monotonic()
        emb = make_embedder(args.embedder, args.embedding_model)
        load_s = time.monotonic() - t0
        rss_model = proc.memory_info().rss
        kb = KnowledgeBase(Path(tmp) / "idx", embedder=emb)
        report = kb.add([docs])
        pages = sum(max(f.pages, 1) for f in report.files if f.status == "added")
        chunks = sum(f.chunks for f in report.files if f.status == "added")
        t1 = time.monotonic()
        again = kb.add([docs])
        reingest_s = time.monotonic() - t1
        r = KnowledgeRetriever(index_dir=str(Path(tmp) / "idx"), embedder=args.embedder,
                               embedding_model=args.embedding_model, builtin_jokes=False)
        r.kb = kb  # same model and index; no second copy
        kb.search("warm up", 3)
        sweep = []
        if args.sweep:  # RRF weight of dense ranks for Chinese queries
            zh = [q for q in sample if q["lang"] == "zh"]
            keep = kb.dense_weight.get("zh", 0.0)
            for w in (0.0, 0.1, 0.25, 0.5, 1.0):
                kb.dense_weight["zh"] = w
                ranks = [next((i + 1 for i, p in enumerate(kb.search(q["q"], k=10))
                               if q["a"] in p.text), None) for q in zh]
                sweep.append({"dense_weight_zh": w,
                              "hit@3": sum(1 for r_ in ranks if r_ and r_ <= 3) / len(zh),
                              "mrr": sum(1 / r_ for r_ in ranks if r_) / len(zh)})
            kb.dense_weight["zh"] = keep
        rows = []
        for mode in ("dense", "bm25", "hybrid"):
            for lang in ("zh", "en"):
                lat, hits, rr = [], 0, 0.0
                for q in (q for q in sample if q["lang"] == lang):
                    t = time.monotonic()
                    ps = kb.search(q["q"], k=10, mode=mode)
                    lat.append(time.monotonic() - t)
                    rank = next((i + 1 for i, p in enumerate(ps) if q["a"] in p.text), None)
                    hits += bool(rank and rank <= 3)
                    rr += 1.0 / rank if rank else 0.0
                n = max(1, sum(1 for q in sample if q["lang"] == lang))
                rows.append({"mode": mode, "lang": lang, "questions": n, "hit@3": hits / n,
                             "mrr": rr / n, "p50_ms": 1000 * statistics.median(lat),
                             "p95_ms": 1000 * percentile(lat, 95)})
        answers = []
        for lang in ("zh", "en"):
            qs = [q for q in sample if q["lang"] == lang]
            lat, ok, answered = [], 0, 0
            for q in qs:
                t = time.monotonic()
                said = r.reply(q["q"], lang)
                lat.append(time.monotonic() - t)
                answered += said is not None
                ok += bool(said and q["a"] in said)
            answers.append({"lang": lang, "questions": len(qs), "answered": answered / len(qs),
                            "correct": ok / len(qs), "p50_ms": 1000 * statistics.median(lat),
                            "p95_ms": 1000 * percentile(lat, 95)})
    ingest_s = report.seconds
    result = {
        "embedder": emb.name, "model_load_s": load_s,
        "rss_model_mb": (rss_model - rss0) / 1e6, "rss_total_mb": proc.memory_info().rss / 1e6,
        "ingest": {"files": report.count("added"), "pages": pages, "chunks": chunks,
                   "bytes": nbytes, "seconds": ingest_s, "pages_per_s": pages / ingest_s,
                   "mb_per_s": nbytes / 1e6 / ingest_s, "chunks_per_s": chunks / ingest_s,
                   "reingest_unchanged_s": reingest_s,
                   "reingest_unchanged": again.count("unchanged")},
        "dense_weight": dict(kb.dense_weight), "zh_dense_weight_sweep": sweep,
        "retrieval": rows, "extractive": answers, "cpu_count": os.cpu_count(),
        "load_avg": os.getloadavg()[0],
    }
    ing = result["ingest"]
    print(f"embedder {emb.name}: load {load_s:.2f} s, +{result['rss_model_mb']:.0f} MB RSS")
    print(f"ingest: {ing['files']} files, {pages} pages, {chunks} chunks, "
          f"{nbytes / 1e3:.0f} kB in {ingest_s:.1f} s = {ing['pages_per_s']:.1f} pages/s, "
          f"{ing['mb_per_s']:.3f} MB/s, {ing['chunks_per_s']:.1f} chunks/s; "
          f"re-ingest unchanged {reingest_s:.2f} s")
    print(f"{'mode':7s} {'lang':4s} {'n':>4s} {'hit@3':>6s} {'MRR':>6s} {'p50 ms':>7s} "
          f"{'p95 ms':>7s}")
    for row in rows:
        print(f"{row['mode']:7s} {row['lang']:4s} {row['questions']:4d} {row['hit@3']:6.2f} "
              f"{row['mrr']:6.2f} {row['p50_ms']:7.1f} {row['p95_ms']:7.1f}")
    print(f"hybrid = RRF(k={RRF_K}) of BM25 and dense ranks, dense weight per language "
          f"{kb.dense_weight}")
    for sw in sweep:
        print(f"  zh dense weight {sw['dense_weight_zh']:4.2f}: hit@3 {sw['hit@3']:.2f} "
              f"MRR {sw['mrr']:.2f}")
    print(f"{'extractive answer':18s} {'n':>4s} {'answered':>8s} {'correct':>8s} {'p50 ms':>7s}")
    for a in answers:
        print(f"{a['lang']:18s} {a['questions']:4d} {a['answered']:8.2f} {a['correct']:8.2f} "
              f"{a['p50_ms']:7.1f}")
    print(f"(load average {result['load_avg']:.1f} on {os.cpu_count()} cores: "
          "compare ratios, not absolute times)")
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
