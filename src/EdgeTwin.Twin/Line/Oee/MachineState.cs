namespace EdgeTwin.Twin.Line.Oee;

/// <summary>State of a machine as the line twin classifies it (from PLC state words, stack lights or inputs).</summary>
public enum MachineState : byte
{
    /// <summary>No (fresh) data: excluded from every time element.</summary>
    Unknown = 0,
    /// <summary>Producing.</summary>
    Running = 1,
    /// <summary>Ready but not producing for no recorded reason.</summary>
    Idle = 2,
    /// <summary>Waiting for parts from upstream.</summary>
    Starved = 3,
    /// <summary>Cannot pass parts downstream.</summary>
    Blocked = 4,
    /// <summary>Stopped by a fault (breakdown).</summary>
    Faulted = 5,
    /// <summary>Changeover / setup.</summary>
    Setup = 6,
    /// <summary>Planned stop (break, planned maintenance, no order): outside planned busy time.</summary>
    PlannedStop = 7,
}

/// <summary>Maps names used in configs and profiles to states.</summary>
public static class MachineStates
{
    public const int Count = 8;

    public static bool TryParse(string? text, out MachineState state)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "running": case "run": case "producing": state = MachineState.Running; return true;
            case "idle": state = MachineState.Idle; return true;
            case "starved": state = MachineState.Starved; return true;
            case "blocked": state = MachineState.Blocked; return true;
            case "faulted": case "fault": case "down": case "breakdown": state = MachineState.Faulted; return true;
            case "setup": case "changeover": state = MachineState.Setup; return true;
            case "planned_stop": case "planned": case "planned-stop": state = MachineState.PlannedStop; return true;
            case "unknown": state = MachineState.Unknown; return true;
            default: state = MachineState.Unknown; return false;
        }
    }

    public static string Name(MachineState s) => s switch
    {
        MachineState.Running => "running",
        MachineState.Idle => "idle",
        MachineState.Starved => "starved",
        MachineState.Blocked => "blocked",
        MachineState.Faulted => "faulted",
        MachineState.Setup => "setup",
        MachineState.PlannedStop => "planned_stop",
        _ => "unknown",
    };
}
