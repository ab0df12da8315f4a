"""`ami-robot train`: train the encoder and world model on an episode dataset (or a ROS 2 bag),
then, with critic steps, the critic on the frozen model, and with ensemble members, the predictor
ensemble on the frozen model (the later stages run on rank 0 only).

ami-robot train --data DIR --out CKPT [--config YAML] [--steps N] [--json PATH] [--resume]
ami-robot train --data DIR --out CKPT --critic-steps 3000                      # world model, then critic
ami-robot train --data DIR --out CKPT --critic-only --critic-steps 3000        # critic for a trained CKPT
ami-robot train --data DIR --out CKPT --ensemble-only --ensemble-members 4     # ensemble for a trained CKPT
ami-robot train --data DIR1 DIR2 --out CKPT                                   # several datasets as one set
ami-robot train --data DIR --out NEW --ensemble-only --ensemble-from CKPT      # fine-tune CKPT's ensemble
torchrun --nproc-per-node 2 -m ami_robot.cli train --data DIR --out CKPT      # DDP
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

from ami_robot.errors import ConfigError, DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ami_robot.config import choices_of
    from ami_robot.data.bags import ACTION_ALIGNMENTS
    from ami_robot.training.config import TrainConfig

    parser.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        metavar="DIR",
        help="episode dataset directory (written by collect, or by --bag); several of one robot train as one set, "
        "each split into training and validation episodes as alone",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="checkpoint directory to write (model.safetensors + config.json)"
    )
    parser.add_argument("--config", type=Path, help="TrainConfig YAML; the flags below override it")
    parser.add_argument("--steps", type=int, help="total optimisation steps")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--eval-every", type=int, help="validate and checkpoint every N steps")
    parser.add_argument("--reg-weight", type=float, help="weight of SIGReg (or VICReg) against the prediction loss")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--max-frames", type=int, help="cap on training frames held in memory (0: all)")
    parser.add_argument("--device", choices=choices_of(TrainConfig, "device"), help="default: auto")
    parser.add_argument(
        "--critic-steps", type=int, help="critic training steps after the world model (config critic.steps; 0: none)"
    )
    parser.add_argument(
        "--critic-only",
        action="store_true",
        help="train only the critic, on the frozen world model already in --out (needs critic steps)",
    )
    parser.add_argument(
        "--ensemble-members",
        type=int,
        help="predictors of the ensemble trained after the world model (config ensemble.members; 0: none)",
    )
    parser.add_argument(
        "--ensemble-only",
        action="store_true",
        help="train only the predictor ensemble, on the frozen world model already in --out (needs members)",
    )
    parser.add_argument(
        "--ensemble-from",
        type=Path,
        metavar="CKPT",
        help="with --ensemble-only: start the members from CKPT's ensemble and fine-tune them on --data, into a "
        "new --out (a copy of CKPT's model)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the train state in --out")
    parser.add_argument("--json", type=Path, help="write the final validation metrics here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    bag = parser.add_argument_group("ROS 2 bag import (converted into --data first)")
    bag.add_argument("--bag", type=Path, help="rosbag2 directory or file (MCAP or sqlite3)")
    bag.add_argument("--image-topic", help="sensor_msgs/msg/Image topic")
    bag.add_argument("--action-topic", help="geometry_msgs/msg/Twist[Stamped] or std_msgs/msg/Float32MultiArray topic")
    bag.add_argument(
        "--twist-fields", default="linear.x,angular.z", help="Twist fields forming the action (comma separated)"
    )
    bag.add_argument("--bag-image-size", type=int, default=64, help="side of the square images written to the dataset")
    bag.add_argument(
        "--action-alignment",
        choices=ACTION_ALIGNMENTS,
        default="hold",
        help="which command moved the robot from frame t to t+1: hold, the last at or before frame t (a controller "
        "on its own clock); answer, the last before frame t+1 (a controller that answers each image, like the brain)",
    )


def run(args: argparse.Namespace) -> int:
    from ami_robot.training import leave_process_group, load_train_config, train, train_critic, train_ensemble

    if args.bag is not None:
        from ami_robot.data.bags import BagImportConfig, BagImportError, import_bag

        if len(args.data) > 1:
            raise ConfigError("--bag converts into one --data directory; give one")
        if not args.image_topic or not args.action_topic:
            raise ConfigError("--bag needs --image-topic and --action-topic")
        try:
            import_bag(
                args.bag,
                args.data[0],
                BagImportConfig(
                    image_topic=args.image_topic,
                    action_topic=args.action_topic,
                    twist_fields=tuple(args.twist_fields.split(",")),
                    image_size=args.bag_image_size,
                    action_alignment=args.action_alignment,
                ),
            )
        except (BagImportError, FileNotFoundError) as exc:
            raise DataError(f"{args.bag}: {exc}" if str(args.bag) not in str(exc) else str(exc)) from exc
    config = load_train_config(
        args.config,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
        reg_weight=args.reg_weight,
        seed=args.seed,
        max_frames=args.max_frames,
        device=args.device,
    )
    if args.critic_steps is not None:
        config = dataclasses.replace(config, critic=dataclasses.replace(config.critic, steps=args.critic_steps))
    if args.ensemble_members is not None:
        config = dataclasses.replace(
            config, ensemble=dataclasses.replace(config.ensemble, members=args.ensemble_members)
        )
    if args.critic_only and args.ensemble_only:
        raise ConfigError("--critic-only and --ensemble-only each train one stage; run them one after the other")
    if args.critic_only and config.critic.steps < 1:
        raise ConfigError("--critic-only needs critic steps: --critic-steps N or critic.steps in --config")
    if args.ensemble_from is not None and not args.ensemble_only:
        raise ConfigError("--ensemble-from fine-tunes an ensemble: use it with --ensemble-only")
    if args.ensemble_only and config.ensemble.members < 2:
        raise ConfigError("--ensemble-only needs members: --ensemble-members N (>= 2) or ensemble.members in --config")
    progress = not args.no_progress
    try:
        if args.critic_only:
            metrics = train_critic(
                args.data, args.out, config, resume=args.resume, json_path=args.json, progress=progress
            )
        elif args.ensemble_only:
            metrics = train_ensemble(
                args.data,
                args.out,
                config,
                resume=args.resume,
                json_path=args.json,
                progress=progress,
                init_from=args.ensemble_from,
            )
        else:
            metrics = train(args.data, args.out, config, resume=args.resume, json_path=args.json, progress=progress)
            leave_process_group()
            later_stages = {
                "critic": (config.critic.steps > 0, train_critic),
                "ensemble": (config.ensemble.members >= 2, train_ensemble),
            }
            for name, (wanted, stage) in later_stages.items():
                if wanted and int(os.environ.get("RANK", "0")) == 0:
                    metrics[name] = stage(args.data, args.out, config, resume=args.resume, progress=progress)
                    if args.json is not None:
                        written = json.loads(args.json.read_text())
                        args.json.write_text(json.dumps({**written, name: metrics[name]}, indent=2))
    except FileExistsError as exc:  # --out holds a checkpoint (a critic, an ensemble); no --resume
        raise ConfigError(str(exc)) from exc
    if args.json is None:
        print(json.dumps(metrics, indent=2))
    return 0
