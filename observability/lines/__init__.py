"""How a line looks: the Line value, its text grammar, the ECS names, the lifecycle messages."""
