"""tools/submit.py: SLURM submission through submitit, tested without SLURM."""

import os
import pickle

import pytest

from slowmask import checkpoint
from slowmask.engine.distributed import Place
from slowmask.engine.launch import PORT_BASE, PORT_RANGE, SlurmTask, import_submitit, slurm_place
from slowmask.engine.train import train
from tool_scripts import DEMO_CFG, demo_overrides, load_tool

submit = load_tool("submit")
submitit = import_submitit()


@pytest.fixture
def slurm_task_environment(monkeypatch):
    """The variables SLURM sets for task 9 of a 2-node x 8-GPU job."""
    variables = {
        "_TEST_CLUSTER_": "slurm", "SLURM_JOB_ID": "4242", "SLURM_NTASKS": "16", "SLURM_PROCID": "9",
        "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "gpu[017-018]",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_executor_parameters_ask_one_task_per_gpu_and_requeue():
    args = submit.parse_args(["--cfg", DEMO_CFG, "--nodes", "2", "--gpus_per_node", "8", "--partition", "learnfair",
                              "--time", "600", "--mem_gb", "480", "SOLVER.MAX_EPOCH", "3"])
    assert submit.executor_parameters(args) == {
        "name": "slowmask", "nodes": 2, "gpus_per_node": 8, "tasks_per_node": 8, "cpus_per_task": 10,
        "timeout_min": 600, "slurm_signal_delay_s": 120, "slurm_partition": "learnfair", "mem_gb": 480,
        "slurm_additional_parameters": {"requeue": True},
    }
    assert submit.config_opts(args) == ["SOLVER.MAX_EPOCH", "3", "NUM_SHARDS", "2", "NUM_GPUS", "8"]
    assert "slurm_additional_parameters" not in submit.executor_parameters(
        submit.parse_args(["--cfg", DEMO_CFG, "--no-requeue"]))


def test_the_place_and_rendezvous_come_from_the_slurm_environment(slurm_task_environment):
    place, init_method = slurm_place(submitit.JobEnvironment())
    assert place == Place(rank=9, local_rank=1, world_size=16)
    host, port = init_method[len("tcp://"):].split(":")
    assert host == "gpu017" and PORT_BASE <= int(port) < PORT_BASE + PORT_RANGE
    assert slurm_place(submitit.JobEnvironment(), port=29500)[1] == "tcp://gpu017:29500"


def test_a_task_refuses_an_allocation_that_does_not_match_the_config(slurm_task_environment, tmp_path):
    task = SlurmTask(DEMO_CFG, ["OUTPUT_DIR", str(tmp_path), "NUM_GPUS", "8", "NUM_SHARDS", "1"], [train])
    with pytest.raises(ValueError, match=r"SLURM started WORLD_SIZE=16 processes but the config asks for .* = 8"):
        task()


def test_checkpoint_requeues_the_same_task_which_pickles():
    task = SlurmTask(DEMO_CFG, ["SOLVER.MAX_EPOCH", "2"], [train], port=1234)
    delayed = task.checkpoint()
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    again = pickle.loads(pickle.dumps(delayed.function))
    assert (again.cfg_file, again.opts, again.jobs, again.port) == (DEMO_CFG, ["SOLVER.MAX_EPOCH", "2"], [train], 1234)


def test_requeue_without_auto_resume_is_refused(tmp_path, capsys):
    code = submit.main(["--cfg", DEMO_CFG, "--cluster", "debug", "--gpus_per_node", "0",
                        "OUTPUT_DIR", str(tmp_path), "TRAIN.AUTO_RESUME", "False"])
    assert code == 2 and "--requeue needs TRAIN.AUTO_RESUME True" in capsys.readouterr().err


def test_the_debug_executor_trains_the_config_into_output_dir(demo_data_dir, tmp_path):
    args = submit.parse_args(["--cfg", DEMO_CFG, "--cluster", "debug", "--gpus_per_node", "0",
                              *demo_overrides(demo_data_dir, str(tmp_path)), "SOLVER.MAX_EPOCH", "1",
                              "SOLVER.WARMUP_EPOCHS", "0.5"])
    job = submit.submit(args)
    job.result()
    assert os.path.basename(checkpoint.last_checkpoint(str(tmp_path))) == "checkpoint_epoch_00001.pyth"
    assert os.path.isdir(tmp_path / "slurm")
