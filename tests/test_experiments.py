"""The experiment table's contract (chapters 10 and 10a): config rows are checked, results append and read back one mode at a time, the
default results file lives in the course cache, a crop row without boxes is skipped (end to end, without training),
a row trains through `course_learner`, and the committed results file is what the home page can read."""
import json, shutil
import pytest
from conftest import ROOT
from kimchi_course.core import course_settings, cache_dir, MODES
from kimchi_course.experiments import *
from kimchi_course.run_experiments import *
from kimchi_course.lessons import joint_verdict
from kimchi_course.crop_boxes import box_coverage, crop_skip_reason # chapter 01c's, used by the crop row

COMMITTED = ROOT/'nbs'/'results'/'kimchi_experiments.jsonl'
ONE_EPOCH = [('fit', dict(n_epoch=1, lr=1e-3))]

def _rec(run, date, mode, exp, acc=0.5, **kw):
    return dict(run_id=run, date=date, mode=mode, experiment=exp, status='done', accuracy=acc, **kw)

@pytest.fixture
def photos(toy_kimchi, tmp_path):
    "A writable copy of three toy-kimchi class folders, with their `crop_area.properties` files"
    dest = tmp_path/'photos'
    for d in sorted(p for p in toy_kimchi.iterdir() if p.is_dir())[:3]: shutil.copytree(d, dest/d.name)
    return dest

def _props(photos): return sorted(photos.glob('*/crop_area.properties'))

# config rows

def test_hostile_config_rows():
    ok = [['fine_tune', {'epochs': 1}]]
    with pytest.raises(ValueError, match='a step is a pair'): parse_experiment(dict(name='x', steps=[{'fine_tune': {'epochs': 1}}]))
    with pytest.raises(ValueError, match='aug must be a dict'): parse_experiment(dict(name='x', aug=['flip_vert'], steps=ok))
    with pytest.raises(ValueError, match='needs epochs='): parse_experiment(dict(name='x', steps=[['fine_tune', {'epochs': True}]]))
    with pytest.raises(ValueError, match='needs n_epoch='): parse_experiment(dict(name='x', steps=[['fit_one_cycle', {'n_epoch': 1.5}]]))
    with pytest.raises(ValueError, match="no argument 'cbs'"): parse_experiment(dict(name='x', steps=[['fit', {'n_epoch': 1, 'cbs': []}]]))
    with pytest.raises(ValueError, match='steps must be a non-empty list'): parse_experiment(dict(name='x'))
    with pytest.raises(ValueError, match='a config row is a dict'): parse_experiment('1-resnet18')
    with pytest.raises(ValueError, match='unknown architecture'): parse_experiment(dict(name='x', arch='vgg16', steps=ok))

def test_config_file_round_trip(tmp_path):
    exps = seed_000_experiments()
    (tmp_path/'rows.json').write_text(json.dumps([e.to_dict() for e in exps]))
    back = parse_experiments(tmp_path/'rows.json')
    assert back == exps
    assert config_table(back).crop_to_box.tolist() == [False, False, False, True, False]
    (tmp_path/'bad.json').write_text('{"name": "not a list"}')
    with pytest.raises(ValueError, match='non-empty list'): parse_experiments(tmp_path/'bad.json')

def test_smoke_rows_scale_only_epochs_and_lrs():
    full,smoke = seed_000_experiments(), seed_000_experiments(1, 1, 1, 1e-2, 1e-2, 1)
    assert [(e.name, e.arch, e.aug, e.crop_to_box) for e in full] == [(e.name, e.arch, e.aug, e.crop_to_box) for e in smoke]
    assert smoke[0].steps == [('fine_tune', dict(epochs=1, freeze_epochs=1, base_lr=1e-2, lr_mult=1)), ('fit_one_cycle', dict(n_epoch=1, lr_max=1e-2))]

# results file

def test_default_results_file_is_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('KIMCHI_CACHE', str(tmp_path/'cache'))
    assert default_results_path() == tmp_path/'cache'/'results'/'kimchi_experiments.jsonl'
    p = append_results([_rec('r1', '2024-01-01', 'smoke', 'a')])  # no path: the cache, never the committed file
    assert p == default_results_path() and p.is_file()
    assert results_table().accuracy.tolist() == [0.5] and 'smoke mode' in results_markdown()

def test_append_read_back_and_latest_per_experiment(tmp_path):
    p = tmp_path/'deep'/'r.jsonl'
    append_results([_rec('r1', '2024-01-01T00:00', 'smoke', 'a', 0.1), _rec('r1', '2024-01-01T00:01', 'smoke', 'b', 0.2)], p)
    append_results([_rec('r2', '2024-01-02T00:00', 'smoke', 'c', 0.3), _rec('r2', '2024-01-02T00:01', 'smoke', 'a', 0.4)], p)
    p.write_text(p.read_text() + '\n\n')  # blank lines are fine
    t = results_table(p)
    assert list(t.index) == ['a', 'b', 'c'] and t.accuracy.tolist() == [0.4, 0.2, 0.3]
    assert t.run_id.tolist() == ['r2', 'r1', 'r2']

def test_modes_never_mix(tmp_path):
    p = tmp_path/'r.jsonl'
    append_results([_rec('s1', '2024-01-01', 'smoke', 'a', 0.1)], p)
    assert results_table(p).accuracy.tolist() == [0.1]  # one mode: no need to name it
    append_results([_rec('f1', '2024-01-02', 'full', 'a', 0.9)], p)
    with pytest.raises(ValueError, match='not comparable'): results_table(p)
    assert results_table(p, mode='full').accuracy.tolist() == [0.9]
    q = tmp_path/'only_smoke.jsonl'; append_results([_rec('s1', '2024-01-01', 'smoke', 'a')], q)
    with pytest.raises(ValueError, match='holds no full records'): results_table(q, mode='full')
    md = results_markdown(p)
    assert md.count('| experiment |') == 2 and md.index('full mode') < md.index('smoke mode')

def test_keep_runs_per_mode(tmp_path):
    p = tmp_path/'r.jsonl'
    for i in range(4):
        append_results([_rec(f's{i}', f'2024-01-0{i+1}', 'smoke', 'a'), _rec(f's{i}', f'2024-01-0{i+1}', 'smoke', 'b')], p, keep_runs=2)
        if i == 0: append_results([_rec('f0', '2023-12-31', 'full', 'a')], p, keep_runs=2)
    runs = read_results(p).groupby('mode').run_id.unique().map(list).to_dict()
    assert runs == {'full': ['f0'], 'smoke': ['s2', 's3']}
    assert [f.name for f in tmp_path.iterdir()] == ['r.jsonl']  # no temporary file left behind
    append_results([_rec('s9', '2024-02-01', 'smoke', 'a')], p, keep_runs=1)
    assert read_results(p).run_id.tolist() == ['f0', 's9']  # the newest run replaces the stale ones

def test_hostile_results_files(tmp_path):
    p = tmp_path/'r.jsonl'
    p.write_text('[1, 2]\n')
    with pytest.raises(ValueError, match='line 1: not an experiment record'): read_results(p)
    p.write_text(json.dumps(_rec('r', 'd', 'smoke', 'a')) + '\n' + json.dumps(dict(mode='smoke', run_id='r')) + '\n')
    with pytest.raises(ValueError, match='line 2: not an experiment record'): read_results(p)
    with pytest.raises(FileNotFoundError, match='run the experiments first'): results_table(tmp_path/'nope.jsonl')
    assert results_markdown(tmp_path/'nope.jsonl').startswith('No experiment results yet')
    with pytest.raises(ValueError, match="needs mode 'smoke' or 'full'"): append_results([dict(experiment='a', run_id='r')], tmp_path/'x.jsonl')
    with pytest.raises(ValueError, match='keep_runs must be'): append_results([], tmp_path/'x.jsonl', keep_runs=0)
    q = tmp_path/'pipes.jsonl'
    append_results([dict(run_id='r', date='d', mode='full', experiment='4-crop', status='skipped', reason='a | b')], q)
    assert 'skipped: a \\| b' in results_markdown(q)

# crop-to-box coverage and skip logic, end to end

def test_box_coverage_of_toy_kimchi(photos):
    files = sorted(photos.rglob('*.jpg'))
    cov = box_coverage(files)
    assert cov.images.tolist() == [4, 4, 4] and cov.with_box.tolist() == [4, 4, 4] and cov.has_properties.all()
    assert crop_skip_reason(cov) == ''

def test_box_coverage_counts_missing_and_malformed(photos):
    a,b,c = _props(photos)
    a.unlink()                                        # no properties file: no boxes
    b.write_text('not a box\n' + b.read_text())       # one malformed line, boxes still there
    c.write_text(c.read_text().splitlines()[0] + '\n')  # only the first image keeps its box
    cov = box_coverage(sorted(photos.rglob('*.jpg'))).set_index('folder')
    assert cov.has_properties.tolist() == [False, True, True]
    assert cov.with_box.iloc[0] == 0 and cov.with_box.iloc[1] == 4 and cov.malformed_lines.iloc[1] == 1
    assert cov.with_box.iloc[2] == 1 and crop_skip_reason(cov) == 'only 5 of 12 images (42%) have a usable crop box, fewer than min_share=50%'

def test_crop_row_without_boxes_is_skipped_and_recorded(photos, tmp_path, monkeypatch):
    "A dataset without crop_area.properties: the crop row becomes a skipped record with the reason; nothing trains"
    for p in _props(photos): p.unlink()
    monkeypatch.setenv('KIMCHI_DATA', str(photos))
    s = course_settings('full', threads=None)
    res = tmp_path/'r.jsonl'
    row = Experiment('4-resnet18-crop', 'resnet18', steps=ONE_EPOCH, crop_to_box=True)
    t = run_experiments([row], s, results=res, verbose=False)
    assert t.status.tolist() == ['skipped']
    assert 'no crop_area.properties file in any of the 3 class folders' in t.reason.iloc[0]
    rec = read_results(res).iloc[0]
    assert rec['mode'] == 'full' and rec.config['crop_to_box'] is True and rec.versions and rec.device
    assert not _props(photos)  # nothing written next to the photos

def test_crop_row_with_few_boxes_is_skipped(photos, tmp_path):
    a,b,c = _props(photos)
    a.unlink(); b.unlink()
    from kimchi_course.archives import _source_tag
    with pytest.raises(SkipExperiment, match=r'only 4 of 12 images \(33%\)'): crop_path(photos)
    assert not list(cache_dir().glob(f'presized/*{_source_tag(photos)}*')) # skipped before anything was written

def test_train_experiment_uses_the_course_learner(photos):
    s = course_settings('smoke', size=32, presize=40, bs=8, workers=0, pretrained=False)
    learn, rec = train_experiment(Experiment('t', 'resnet18', steps=ONE_EPOCH), s, photos)
    assert [m.name for m in learn.metrics] == ['accuracy', 'error_rate', 'precision_score', 'recall_score']
    assert rec['status'] == 'done' and rec['n_train'] + rec['n_valid'] == 12
    assert rec['n_valid'] == len(learn.dls.valid_ds) and all(photos in f.parents for f in learn.dls.valid_ds.items)
    assert 0 <= rec['accuracy'] <= 1 and 0 <= rec['recall_macro'] <= 1 and rec['seconds'] > 0
    assert len(rec['hits']) == rec['n_valid'] and set(rec['hits']) <= {'0', '1'}
    assert abs(rec['hits'].count('1')/rec['n_valid'] - rec['accuracy']) < 1e-6  # the hits are the accuracy, image by image
    from kimchi_course.core import metrics_table
    assert abs(metrics_table(learn)['accuracy'] - rec['accuracy']) < 1e-6  # and the one place metrics come from agrees
    with learn.no_bar(): p = learn.get_preds()[0].argmax(1)
    assert rec['predicted_classes'] == p.unique().numel()

# the committed file, as the home page reads it

def test_committed_results_file_is_readable_by_the_home_page():
    assert COMMITTED.is_file(), 'nbs/10a_run_experiments.ipynb writes nbs/results/kimchi_experiments.jsonl with KIMCHI_COMMIT_RESULTS=1; run it and commit the file'
    df = read_results(COMMITTED)
    assert set(df['mode']) <= set(MODES)
    assert df.groupby('mode').run_id.nunique().max() == 1, 'the committed file should hold one run per mode (keep_runs=1)'
    for m in set(df['mode']):
        t = results_table(COMMITTED, mode=m)
        rows = [e.name for e in seed_000_experiments() if m == 'full' or e.arch == 'resnet18'] # smoke: the toy-pretrained resnet18 rows
        assert list(t.index) == rows
        done = t[t.status == 'done']
        assert done.valid_set.nunique() == 1  # every row of the latest run validated on the same photos
        assert done.n_valid.nunique() == 1 and (done.n_train > 0).all()
        assert done[['accuracy', 'precision_macro', 'recall_macro']].apply(lambda c: c.between(0, 1)).all().all()
    md = results_markdown(COMMITTED)
    assert '| 1-resnet18 | resnet18 | no |' in md and '| 4-resnet18-crop | resnet18 | yes |' in md

# seed 000's lesson, from the hits: three verdicts, rows on the same footing, skipped and diverged rows left out

def _run(valid_loss=1.0, **hits):
    import pandas as pd
    return pd.DataFrame([dict(experiment=k, status='done', reason='', hits=v, valid_loss=valid_loss, valid_set='same')
                         for k,v in hits.items()]).set_index('experiment')

NAMES = dict(base='plain', heavier=('heavy',), crop='crop')

def test_seed_000_lesson_needs_a_difference_beyond_the_noise():
    base = '1'*120 + '0'*80
    les = seed_000_lesson(_run(plain=base, heavy='1'*70 + '0'*130, crop='1'*170 + '0'*30), 11, **NAMES)
    assert les['verdict'] == 'shown' and les['parts'].verdict.tolist() == ['shown', 'shown']
    slightly = '1'*100 + '0'*20 + '1'*14 + '0'*66  # 20 images lost, 14 others gained: 6 fewer, inside the noise
    les = seed_000_lesson(_run(plain=base, heavy=slightly), 11, **NAMES)
    assert les['verdict'] == "can't tell" and '95% interval' in les['numbers'] and 'plain − heavy' in les['numbers']
    assert seed_000_lesson(_run(plain=base, heavy='1'*190 + '0'*10), 11, **NAMES)['verdict'] == 'contradicted'
    mixed = seed_000_lesson(_run(plain=base, heavy='1'*70 + '0'*130, crop='1'*60 + '0'*140), 11, **NAMES)
    assert mixed['parts'].verdict.tolist() == ['shown', 'contradicted'] and mixed['verdict'] == 'contradicted'

def test_seed_000_lesson_leaves_out_skipped_diverged_and_absent_rows():
    base = '1'*120 + '0'*80
    t = _run(plain=base, heavy='1'*70 + '0'*130, crop=base).assign(status=['done', 'done', 'skipped'], reason=['', '', 'no boxes'])
    les = seed_000_lesson(t, 11, **NAMES)
    assert les['parts'].comparison.tolist() == ['plain − heavy'] and les['notes'] == ['crop skipped (no boxes)']
    gone = seed_000_lesson(_run(plain=base, heavy=base).assign(valid_loss=[1.0, float('inf')]), 11, **NAMES)
    assert gone['verdict'] == "can't tell" and gone['parts'].empty and 'heavy diverged' in gone['numbers']
    assert seed_000_lesson(_run(plain=base), 11, **NAMES)['verdict'] == "can't tell"  # nothing to compare with
    with pytest.raises(ValueError, match='different photos'): seed_000_lesson(_run(plain=base, heavy=base).assign(valid_set=['a', 'b']), 11, **NAMES)
    assert joint_verdict([]) == "can't tell" and joint_verdict(["shown", "shown"]) == "shown"

def test_the_real_rows_are_in_the_lesson():
    assert set(SEED_000_HEAVIER) <= {e.name for e in seed_000_experiments()}
    assert [e.name for e in seed_000_experiments() if e.arch == 'resnet18'] == ['1-resnet18', '4-resnet18-crop', '5-resnet18-heavy-aug']

def test_markdown_shows_the_classes_predicted_and_the_weights(tmp_path):
    p = tmp_path/'r.jsonl'
    append_results([_rec('r', '2024-01-01', 'smoke', '1-resnet18', 0.5, predicted_classes=7, pretrained=True)], p)
    md = results_markdown(p)
    assert '| classes predicted |' in md and '| 0.500 | – | – | – | – | 7 |' in md and 'toy-pretrained weights' in md
    assert 'no test accuracy' in md

def test_markdown_shows_the_test_accuracy_and_its_split(tmp_path):
    p = tmp_path/'r.jsonl'
    append_results([_rec('r', '2024-01-01', 'full', 'a', 0.8, test_accuracy=0.75, n_test=2200, test_data="the open data's test split")], p)
    md = results_markdown(p)
    assert '| a | – | no | 0.800 | 0.750 |' in md and "test accuracy on the 2200 images of the open data's test split" in md
