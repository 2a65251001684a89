"""Operations state the platform keeps about itself (pipeline health as Dagster last reported it)."""
