namespace EdgeTwin.Twin.Line.Oee;

/// <summary>
/// Machine state from the three lamps of a stack light (IEC 60073 colours): red = fault, green = running,
/// amber alone = waiting (idle), all dark = the machine is off (planned stop). Red wins over green, since a
/// machine that shows a fault is not producing even if the green lamp is still lit.
/// </summary>
public static class StackLight
{
    public static MachineState Classify(bool red, bool amber, bool green) =>
        red ? MachineState.Faulted
        : green ? MachineState.Running
        : amber ? MachineState.Idle
        : MachineState.PlannedStop;
}
